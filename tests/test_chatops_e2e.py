"""`sluice chatops` as a subprocess against a real dev server and `sluice worker`, Envoy,
sample services and load, with requests signed exactly as Slack signs them and a fake
Slack (a real HTTP server) that records every reply and answers `usergroups.users.list`.

Every control from chat and the API must reach the workflow (its `status.controls`) and
the reply must show the outcome; every refusal must leave `status.controls` unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from activities.routers import router_for
from deploy.processes import Process, venv_binary
from deploy.stack import LocalStack, Site
from frontends.chatops.access import token_digest
from frontends.client.deployments import deployment_handle, start_deployment
from frontends.client.history import DeploymentRecord
from frontends.client.operations import current
from sluicegate.contracts import ControlRecord, DeploymentStatus
from tests.stack_fixtures import sluice_chatops
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "chatops"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"
ALICE, BOB, CAROL, MALLORY, FLOOD = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY", "U0FLOOD"
ONCALL = "S0ONCALL"
TOKENS = {"ops": "sgt_ops", "ci": "sgt_ci", "flood": "sgt_flood"}
RATE = 40  # per minute, per Slack user and per token
MAX_BODY = 4096
# Waits for a person: a long bake, then a manual gate.
WAITING_STAGES = [
    {"name": "canary", "weight": 10, "bake": "PT1H"},
    {"name": "review", "weight": 20, "bake": "PT1S", "manual_gate": True},
]
SLACK, GUARDED = "chat-slack", "chat-guarded"


# -- a fake Slack: records replies to response_url, answers usergroups.users.list ----------


class FakeSlack:
    """Slack's side: the `response_url`s it hands out, and its Web API for user groups."""

    def __init__(self) -> None:
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.group_lookups: list[str] = []
        self.groups = {ONCALL: [CAROL]}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/api/"):
                    self._web_api(parse_qs(body.decode()))
                    return
                key = self.path.removeprefix("/response/")
                fake.replies.setdefault(key, []).append(json.loads(body))
                self._answer(b"ok", "text/plain")

            def do_GET(self) -> None:
                self._web_api({})

            def _web_api(self, form: dict[str, list[str]]) -> None:
                """Slack's Web API (GET or POST, arguments in the query or the form)."""
                url = urlparse(self.path)
                if url.path != "/api/usergroups.users.list":
                    self._answer(json.dumps({"ok": False, "error": "unknown_method"}).encode())
                    return
                group = {**form, **parse_qs(url.query)}.get("usergroup", [""])[0]
                fake.group_lookups.append(group)
                if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                    answer = {"ok": False, "error": "invalid_auth"}
                elif group in fake.groups:
                    answer = {"ok": True, "users": fake.groups[group]}
                else:
                    answer = {"ok": False, "error": "no_such_subteam"}
                self._answer(json.dumps(answer).encode())

            def _answer(self, body: bytes, kind: str = "application/json") -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def response_url(self) -> tuple[str, str]:
        key = uuid.uuid4().hex
        return key, f"{self.url}/response/{key}"


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


# -- the processes: worker, chat-ops ---------------------------------------------------------


def settings_toml(slack: FakeSlack) -> str:
    def token(name: str, services: list[str], actions: list[str]) -> str:
        return (
            f'[[chatops.tokens]]\nname = "{name}"\nsha256 = "{token_digest(TOKENS[name])}"\n'
            f"services = {json.dumps(services)}\nactions = {json.dumps(actions)}\n"
        )

    return (
        "[chatops]\n"
        f'signing_secret = "{SECRET}"\n'
        f'slack_bot_token = "{BOT_TOKEN}"\n'
        f'slack_api_url = "{slack.url}/api/"\n'
        f"max_body_bytes = {MAX_BODY}\n"
        f'rate_limit = "{RATE}/minute"\n'
        '[chatops.access."*"]\n'
        f'promote = {{ users = ["{ALICE}"] }}\n'
        f'abort = {{ users = ["{ALICE}"] }}\n'
        f'pause = {{ users = ["{ALICE}"] }}\n'
        f'resume = {{ users = ["{ALICE}"] }}\n'
        f'rollback = {{ users = ["{ALICE}"] }}\n'
        f"[chatops.access.{SLACK}]\n"
        f'abort = {{ users = ["{ALICE}", "{BOB}"] }}\n'
        f'pause = {{ users = ["{ALICE}", "{BOB}"] }}\n'
        f"[chatops.access.{GUARDED}]\n"
        f'pause = {{ users = ["{ALICE}"], groups = ["{ONCALL}"] }}\n'
        + token("ops", ["*"], ["*"])
        + token("ci", [SLACK], ["status", "pause", "resume", "promote"])
        + token("flood", ["elsewhere"], ["status"])
    )


@pytest.fixture(scope="module")
async def chatops(
    stack: LocalStack,
    dev_server: str,
    slack: FakeSlack,
    worker: Process,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """`sluice chatops` on a free port; its base URL once /healthz answers."""
    home = tmp_path_factory.mktemp("chatops")
    health = {"ok": True, "slack": True, "api": True, "reports": True}
    async with sluice_chatops(
        stack, dev_server, TASK_QUEUE, settings_toml(slack), home, health
    ) as (url, _):
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


# -- deployments that wait for people --------------------------------------------------------


@pytest.fixture(scope="module")
def slack_site(stack: LocalStack) -> Iterator[Site]:
    site = Site(stack, SLACK)
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def guarded_site(stack: LocalStack) -> Iterator[Site]:
    site = Site(stack, GUARDED)
    try:
        yield site
    finally:
        site.stop()


async def deploy(client: Client, site: Site) -> str:
    """Start a deployment that waits for people, from the build the router serves as stable
    now (v2 once an earlier test promoted it; v1 when this test runs alone); its run id
    once its first stage bakes."""
    serving = await router_for(site.spec().router).read_state()
    swapped = serving.stable_endpoints == (site.canary.address,)
    versions = {"stable": site.canary, "canary": site.stable} if swapped else {}
    spec = site.spec(
        stages=WAITING_STAGES,
        failed_checks_tolerated=5,
        inconclusive_checks_tolerated=60,
        **versions,
    )
    handle = await start_deployment(client, spec, TASK_QUEUE)

    async def baking() -> bool:
        state = await status(client, site.name)
        return state.phase == "progressing" and state.bake is not None

    await eventually(baking, f"{site.name}'s first stage bakes", attempts=400)
    assert handle.result_run_id is not None
    return handle.result_run_id


async def status(client: Client, service: str) -> DeploymentStatus:
    state = await current(client, service)
    assert isinstance(state, DeploymentStatus), state
    return state


async def controls(client: Client, service: str) -> tuple[ControlRecord, ...]:
    """The controls of the service's latest deployment, running or (an abort is quick to
    roll back) already ended."""
    return (await current(client, service)).controls


async def outcome(client: Client, service: str) -> str:
    return (await deployment_handle(client, service).result()).outcome


@pytest.fixture(scope="module")
async def guarded(client: Client, guarded_site: Site, worker: Process) -> AsyncIterator[str]:
    """A deployment of GUARDED that stays running for the refusal tests; aborted at the end."""
    await deploy(client, guarded_site)
    try:
        yield GUARDED
    finally:
        state = await current(client, GUARDED)
        if not isinstance(state, DeploymentRecord):
            await deployment_handle(client, GUARDED).cancel()
            with contextlib.suppress(WorkflowFailureError):  # it ends cancelled
                await deployment_handle(client, GUARDED).result()


# -- Slack requests, signed as Slack signs them ---------------------------------------------


def signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature(body, stamp, secret),
    }


def command_body(slack: FakeSlack, user: str, text: str) -> tuple[str, bytes]:
    """A slash command's form body, field by field as Slack sends it; and its reply key."""
    key, response_url = slack.response_url()
    form = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": "T0001",
        "team_domain": "example",
        "channel_id": "C2147483705",
        "channel_name": "deploys",
        "user_id": user,
        "user_name": user.removeprefix("U0").lower(),
        "command": "/deploy",
        "text": text,
        "api_app_id": "A123456",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }
    return key, urlencode(form).encode()


def click_body(slack: FakeSlack, user: str, action: str, service: str, run_id: str) -> tuple:
    """A `block_actions` payload: a click on a notification's button."""
    key, response_url = slack.response_url()
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.removeprefix("U0").lower(), "team_id": "T0001"},
        "api_app_id": "A123456",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": "1548261231.000200"},
        "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "C2147483705", "name": "deploys"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action,
                "block_id": "decision",
                "text": {"type": "plain_text", "text": action.title()},
                "value": json.dumps({"service": service, "run_id": run_id}),
                "type": "button",
                "action_ts": "1548426417.840180",
            }
        ],
    }
    return key, urlencode({"payload": json.dumps(payload)}).encode()


async def slash(
    http: httpx.AsyncClient, url: str, slack: FakeSlack, user: str, text: str
) -> tuple[str, httpx.Response]:
    key, body = command_body(slack, user, text)
    answer = await http.post(f"{url}/slack/commands", content=body, headers=signed_headers(body))
    return key, answer


async def reply(slack: FakeSlack, key: str) -> dict[str, Any]:
    """The one message posted to a command's response_url."""
    await eventually(lambda: slack.replies.get(key), "the outcome is posted to Slack")
    [message] = slack.replies[key]
    return message


def assert_in_channel(message: dict[str, Any], user: str, *words: str) -> None:
    assert message["response_type"] == "in_channel", message
    assert message["text"].startswith(f"<@{user}> "), message
    for word in words:
        assert word in message["text"], message


def last(records: tuple[ControlRecord, ...]) -> tuple[str, str, str, bool]:
    record = records[-1]
    return record.action, record.by, record.reason, record.full


# -- every control from a slash command -----------------------------------------------------


async def test_every_control_from_slack_reaches_the_workflow(
    chatops: str, slack: FakeSlack, client: Client, slack_site: Site, http: httpx.AsyncClient
) -> None:
    await deploy(client, slack_site)

    key, answer = await slash(http, chatops, slack, ALICE, f"status {SLACK}")
    assert answer.status_code == 200
    assert answer.json() == {"response_type": "in_channel"}  # the ack shows the command
    assert_in_channel(await reply(slack, key), ALICE, f"{SLACK} v1 → v2: progressing")

    key, _ = await slash(http, chatops, slack, BOB, f"pause {SLACK} waiting for batch job")
    assert_in_channel(await reply(slack, key), BOB, "pause: accepted", "pause by slack:U0BOB")
    assert last(await controls(client, SLACK)) == (
        "pause", "slack:U0BOB (bob)", "waiting for batch job", False
    )  # fmt: skip

    key, _ = await slash(http, chatops, slack, ALICE, f"resume {SLACK}")
    assert_in_channel(await reply(slack, key), ALICE, "resume: accepted")
    assert last(await controls(client, SLACK))[:2] == ("resume", "slack:U0ALICE (alice)")

    key, _ = await slash(http, chatops, slack, ALICE, f"resume {SLACK}")
    assert_in_channel(
        await reply(slack, key), ALICE, "refused: cannot resume: deployment is not paused"
    )

    key, _ = await slash(http, chatops, slack, ALICE, f"promote {SLACK} canary looks fine")
    assert_in_channel(await reply(slack, key), ALICE, "promote: accepted")
    assert last(await controls(client, SLACK)) == (
        "promote", "slack:U0ALICE (alice)", "canary looks fine", False
    )  # fmt: skip

    async def at_the_gate() -> bool:
        return (await status(client, SLACK)).phase == "awaiting_approval"

    await eventually(at_the_gate, "the next stage waits at its gate", attempts=400)
    key, _ = await slash(http, chatops, slack, ALICE, f"promote {SLACK} --full ship it")
    assert_in_channel(await reply(slack, key), ALICE, "promote: accepted", "promote --full by")
    assert await outcome(client, SLACK) == "promoted"

    key, _ = await slash(http, chatops, slack, ALICE, f"status {SLACK}")
    assert_in_channel(await reply(slack, key), ALICE, "nothing running", "ended promoted")


async def test_abort_from_slack_with_a_reason(
    chatops: str, slack: FakeSlack, client: Client, slack_site: Site, http: httpx.AsyncClient
) -> None:
    await deploy(client, slack_site)
    key, _ = await slash(http, chatops, slack, BOB, f"abort {SLACK} support tickets")
    assert_in_channel(await reply(slack, key), BOB, "abort: accepted")
    assert last(await controls(client, SLACK)) == (
        "abort", "slack:U0BOB (bob)", "support tickets", False
    )  # fmt: skip
    result = await deployment_handle(client, SLACK).result()
    assert result.outcome == "rolled_back"
    assert "support tickets" in result.reason


async def test_rollback_from_slack_waits_for_the_rollback(
    chatops: str, slack: FakeSlack, client: Client, slack_site: Site, http: httpx.AsyncClient
) -> None:
    await deploy(client, slack_site)
    key, _ = await slash(http, chatops, slack, ALICE, f"rollback {SLACK}")
    message = await reply(slack, key)
    assert_in_channel(message, ALICE, "rolled_back", 'recorded as "rolled back from Slack"')
    result = await deployment_handle(client, SLACK).result()
    assert (result.outcome, result.controls[-1].by) == ("rolled_back", "slack:U0ALICE (alice)")


# -- buttons ---------------------------------------------------------------------------------


async def click(
    http: httpx.AsyncClient, url: str, slack: FakeSlack, user: str, action: str, run_id: str
) -> str:
    key, body = click_body(slack, user, action, SLACK, run_id)
    answer = await http.post(
        f"{url}/slack/interactions", content=body, headers=signed_headers(body)
    )
    assert answer.status_code == 200, answer.text
    return key


async def test_buttons_steer_only_their_own_run(
    chatops: str, slack: FakeSlack, client: Client, slack_site: Site, http: httpx.AsyncClient
) -> None:
    run_id = await deploy(client, slack_site)
    before = await controls(client, SLACK)

    key = await click(http, chatops, slack, ALICE, "promote", "an-older-run")
    message = await reply(slack, key)
    assert "refused: cannot promote: that was for run an-older-run" in message["text"]
    assert await controls(client, SLACK) == before

    key = await click(http, chatops, slack, MALLORY, "abort", run_id)
    assert "refused: <@U0MALLORY> may not abort" in (await reply(slack, key))["text"]
    assert (await reply(slack, key))["response_type"] == "ephemeral"
    assert await controls(client, SLACK) == before

    key = await click(http, chatops, slack, ALICE, "promote", run_id)
    assert_in_channel(await reply(slack, key), ALICE, "promote: accepted")
    assert last(await controls(client, SLACK))[:2] == ("promote", "slack:U0ALICE (alice)")

    key = await click(http, chatops, slack, BOB, "abort", run_id)
    assert_in_channel(await reply(slack, key), BOB, "abort: accepted", "aborted from Slack")
    assert await outcome(client, SLACK) == "rolled_back"


# -- the HTTP API ----------------------------------------------------------------------------


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def test_the_api_steers_a_deployment_with_a_token(
    chatops: str, client: Client, slack_site: Site, http: httpx.AsyncClient
) -> None:
    await deploy(client, slack_site)
    api = f"{chatops}/api/v1/services/{SLACK}"

    answer = await http.get(api, headers=bearer("ci"))
    assert answer.status_code == 200
    assert answer.json()["status"]["phase"] == "progressing"

    answer = await http.post(f"{api}/pause", json={"reason": "deploy freeze"}, headers=bearer("ci"))
    assert (answer.status_code, answer.json()["ok"]) == (200, True)
    assert answer.json()["status"]["paused"] is True
    assert last(await controls(client, SLACK)) == ("pause", "api:ci", "deploy freeze", False)

    answer = await http.post(f"{api}/pause", headers=bearer("ci"))
    assert answer.status_code == 409
    assert answer.json() == {
        "ok": False,
        "service": SLACK,
        "action": "pause",
        "by": "api:ci",
        "error": "refused: cannot pause: already paused",
    }

    assert (await http.post(f"{api}/resume", headers=bearer("ci"))).status_code == 200
    before = await controls(client, SLACK)
    answer = await http.post(f"{api}/abort", json={"reason": "x"}, headers=bearer("ci"))
    assert answer.status_code == 403
    assert "token 'ci' may not abort" in answer.json()["error"]
    assert "add 'abort' to its actions" in answer.json()["error"]
    assert await controls(client, SLACK) == before

    answer = await http.post(f"{api}/promote", json={"full": True}, headers=bearer("ci"))
    assert answer.status_code == 200, answer.text
    assert last(await controls(client, SLACK)) == ("promote", "api:ci", "", True)
    assert await outcome(client, SLACK) == "promoted"

    answer = await http.post(f"{api}/resume", headers=bearer("ci"))
    assert answer.status_code == 409
    assert "nothing running" in answer.json()["error"]
    answer = await http.get(f"{chatops}/api/v1/services/never-deployed", headers=bearer("ops"))
    assert answer.status_code == 404
    assert "no deployment of 'never-deployed'" in answer.json()["error"]


async def test_api_refusals_send_nothing_to_the_workflow(
    chatops: str, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    api = f"{chatops}/api/v1/services/{guarded}"
    before = await controls(client, guarded)
    cases = [
        (await http.post(f"{api}/pause"), 401, "missing token"),
        (await http.post(f"{api}/pause", headers={"Authorization": "Bearer nope"}), 401, "unknown"),
        (await http.post(f"{api}/pause", headers=bearer("ci")), 403, f"service '{guarded}'"),
        (await http.post(f"{api}/pasue", headers=bearer("ops")), 404, "unknown action 'pasue'"),
        (
            await http.post(f"{api}/pause", content=b"{nope", headers=bearer("ops")),
            422,
            "body: malformed JSON",
        ),
        (
            await http.post(f"{api}/pause", json={"resaon": "x"}, headers=bearer("ops")),
            422,
            "resaon",
        ),
        (await http.post(f"{api}/pause", json={"full": True}, headers=bearer("ops")), 422, "full"),
        (
            await http.post(f"{api}/pause", json={"reason": 5}, headers=bearer("ops")),
            422,
            "reason: Input should be a valid string",
        ),
        (
            await http.post(f"{chatops}/api/v1/services/Not%20Valid/pause", headers=bearer("ops")),
            422,
            "service: must be",
        ),
        (
            await http.post(f"{api}/pause", json={"reason": "x" * MAX_BODY}, headers=bearer("ops")),
            413,
            f"at most {MAX_BODY} bytes",
        ),
    ]
    for answer, code, words in cases:
        assert answer.status_code == code, (code, answer.text)
        assert answer.json()["ok"] is False
        assert words in answer.json()["error"], answer.text
    assert await controls(client, guarded) == before


async def test_api_rate_limit_per_token(
    chatops: str, guarded: str, http: httpx.AsyncClient
) -> None:
    api = f"{chatops}/api/v1/services/{guarded}"
    codes = [(await http.get(api, headers=bearer("flood"))).status_code for _ in range(RATE)]
    assert set(codes) == {403}  # within its rate, refused for its scope
    limited = await http.get(api, headers=bearer("flood"))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert (await http.get(api, headers=bearer("ops"))).status_code == 200  # others go on


# -- refusals from Slack ---------------------------------------------------------------------


async def test_forged_stale_and_replayed_requests_are_refused(
    chatops: str, slack: FakeSlack, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    before = await controls(client, guarded)
    endpoint = f"{chatops}/slack/commands"

    key, body = command_body(slack, ALICE, f"pause {guarded}")
    forged = await http.post(endpoint, content=body, headers=signed_headers(body, secret="x"))
    assert (forged.status_code, forged.json()["error"]) == (401, "bad signature")

    tampered = body.replace(b"pause", b"abort")
    headers = signed_headers(body)  # signed for another body
    answer = await http.post(endpoint, content=tampered, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (401, "bad signature")

    stale = signed_headers(body, timestamp=int(time.time()) - 6 * 60)  # correctly signed
    answer = await http.post(endpoint, content=body, headers=stale)
    assert answer.status_code == 401
    assert "more than 5 minutes" in answer.json()["error"]

    answer = await http.post(endpoint, content=body)
    assert (answer.status_code, answer.json()["ok"]) == (401, False)

    key, body = command_body(slack, ALICE, f"status {guarded}")
    headers = signed_headers(body)
    assert (await http.post(endpoint, content=body, headers=headers)).status_code == 200
    await reply(slack, key)
    replayed = await http.post(endpoint, content=body, headers=headers)
    assert replayed.status_code == 401
    assert "replayed" in replayed.json()["error"]

    assert await controls(client, guarded) == before
    assert len(slack.replies[key]) == 1


async def test_users_without_the_right_are_refused_saying_why(
    chatops: str, slack: FakeSlack, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    before = await controls(client, guarded)
    cases = [
        (MALLORY, f"pause {guarded}", f"refused: <@{MALLORY}> may not pause {guarded}"),
        # Bob may pause chat-slack, not this service.
        (BOB, f"pause {guarded}", f"[chatops.access.{guarded}] pause allows users U0ALICE"),
        (BOB, f"rollback {guarded}", '[chatops.access."*"] rollback allows users U0ALICE only'),
        (ALICE, f"promot {guarded}", "unknown action 'promot'; valid: status, promote"),
        (ALICE, "pause", "pause: which service?"),
        (ALICE, "pause Guarded!", "SERVICE must be 1-63 characters"),
        (ALICE, f"abort {guarded} --now", "unknown option --now"),
    ]
    for user, text, words in cases:
        key, answer = await slash(http, chatops, slack, user, text)
        assert answer.status_code == 200
        assert answer.json()["response_type"] == "ephemeral"
        assert words in answer.json()["text"], answer.text
        assert key not in slack.replies
    assert await controls(client, guarded) == before

    key, _ = await slash(http, chatops, slack, ALICE, "pause never-deployed")
    message = await reply(slack, key)
    assert message["response_type"] == "ephemeral"
    assert "no deployment of 'never-deployed'" in message["text"]
    assert await controls(client, guarded) == before


async def test_a_member_of_an_allowed_user_group_may(
    chatops: str, slack: FakeSlack, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    key, _ = await slash(http, chatops, slack, CAROL, f"pause {guarded} on-call says so")
    assert_in_channel(await reply(slack, key), CAROL, "pause: accepted")
    assert last(await controls(client, guarded)) == (
        "pause", "slack:U0CAROL (carol)", "on-call says so", False
    )  # fmt: skip
    assert ONCALL in slack.group_lookups
    key, _ = await slash(http, chatops, slack, ALICE, f"resume {guarded}")
    assert_in_channel(await reply(slack, key), ALICE, "resume: accepted")


async def test_oversized_bodies_are_refused(
    chatops: str, slack: FakeSlack, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    before = await controls(client, guarded)
    _, body = command_body(slack, ALICE, f"pause {guarded} " + "x" * MAX_BODY)
    answer = await http.post(
        f"{chatops}/slack/commands", content=body, headers=signed_headers(body)
    )
    assert answer.status_code == 413
    assert answer.json()["error"] == f"request body too large: at most {MAX_BODY} bytes"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for at in range(0, len(body), 1024):
            yield body[at : at + 1024]

    answer = await http.post(
        f"{chatops}/slack/commands", content=chunks(), headers=signed_headers(body)
    )
    assert answer.status_code == 413
    assert await controls(client, guarded) == before


async def test_slack_rate_limit_per_user(
    chatops: str, slack: FakeSlack, client: Client, guarded: str, http: httpx.AsyncClient
) -> None:
    before = await controls(client, guarded)
    for _ in range(RATE):
        _, answer = await slash(http, chatops, slack, FLOOD, f"pause {guarded}")
        assert "may not pause" in answer.json()["text"]
    _, answer = await slash(http, chatops, slack, FLOOD, f"pause {guarded}")
    assert answer.json() == {
        "response_type": "ephemeral",
        "text": f"slow down: at most {RATE}/minute per user; try again shortly",
    }
    assert await controls(client, guarded) == before


def test_chatops_refuses_to_start_with_nothing_to_serve(tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "empty.toml"
    config.write_text("")
    done = subprocess.run(
        [venv_binary("sluice"), "--config", str(config), "chatops"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "chat-ops has nothing to serve: set chatops.signing_secret" in done.stderr
