"""Bad input, end to end (issue 7): hypothesis-generated bad `sluice` commands (in process,
against a real dev server and a real `sluice worker`) and bad Slack slash commands and API
requests (to a real `sluice chatops` process) are each refused with a clear message and the
documented exit code or HTTP status, never a traceback or a 5xx; and, after all of them, no
workflow was started and a deployment kept running throughout received no signal or update.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError
from typer.main import get_command

from bench.scripted import spec_data
from deploy.processes import Process
from deploy.stack import LocalStack, Site
from frontends.chatops.access import token_digest
from frontends.chatops.api import POST_ACTIONS, ControlRequest
from frontends.chatops.commands import UsageError, parse
from frontends.cli.app import Exit, app, classify
from frontends.client.deployments import deployment_handle, start_deployment
from frontends.client.history import DeploymentRecord
from frontends.client.operations import current
from sluicegate.contracts import HEALTH_REPORT, MAX_REASON, ControlRecord, DeploymentStatus
from sluicegate.errors import SluicegateError, SpecError
from sluicegate.settings import CONFIG_ENV
from sluicegate.spec import parse_spec, service_name_problem, workflow_id_for
from tests.stack_fixtures import sluice_chatops
from tests.test_chatops_e2e import SECRET, FakeSlack, command_body, signed_headers
from tests.test_fuzz_inputs import FIELDS, JSON, PATHS, SLASH_WORDS, mutated
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "fuzz-e2e"
TARGET = "fuzz-target"  # the service whose deployment runs through every test here
ALICE = "U0ALICE"  # may do everything from Slack
API_TOKEN = "sgt_fuzz"  # may do everything through the API
MARKER = "FuzzVisibilityMarker"  # a workflow type no worker runs, to know visibility caught up
MARKER_QUEUE = "fuzz-e2e-markers"
COMMANDS = ("promote", "abort", "pause", "resume", "rollback", "status", "watch")
CHAT_ACTIONS = COMMANDS[:6]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CASES: Counter[str] = Counter()  # bad inputs sent, per target, for the final test


@dataclass(frozen=True)
class Baseline:
    """What the dev server and the running deployment looked like before any bad input."""

    run_id: str
    executions: frozenset[tuple[str, str]]
    messages: tuple[str, ...]
    controls: tuple[ControlRecord, ...]


# -- the running deployment and what it received ------------------------------------------


@pytest.fixture(scope="module")
def target_site(stack: LocalStack) -> Iterator[Site]:
    """TARGET's Envoy, v1 and v2 builds and a light steady load."""
    site = Site(stack, TARGET, rps=60)
    try:
        yield site
    finally:
        site.stop()


async def status(client: Client) -> DeploymentStatus:
    """TARGET's running deployment's status, from its query."""
    state = await current(client, TARGET)
    assert isinstance(state, DeploymentStatus), state
    return state


@pytest.fixture(scope="module")
async def running(client: Client, target_site: Site, worker: Process) -> AsyncIterator[str]:
    """A deployment of TARGET baking for an hour (it never judges itself out); its run id."""
    spec = target_site.spec(
        stages=[{"name": "canary", "weight": 10, "bake": "PT1H"}],
        interval=timedelta(seconds=5),
        mode="thresholds",
        failed_checks_tolerated=100_000,
        inconclusive_checks_tolerated=100_000,
    )
    handle = await start_deployment(client, spec, TASK_QUEUE)

    async def baking() -> bool:
        state = await status(client)
        return state.phase == "progressing" and state.bake is not None

    try:
        await eventually(baking, "the target deployment bakes", attempts=600)
        assert handle.result_run_id is not None
        yield handle.result_run_id
    finally:
        if not isinstance(await current(client, TARGET), DeploymentRecord):
            await deployment_handle(client, TARGET).cancel()
            with contextlib.suppress(WorkflowFailureError):  # it ends cancelled
                await deployment_handle(client, TARGET).result()


async def operator_messages(client: Client, run_id: str) -> tuple[str, ...]:
    """Every signal and update in the run's history, but the watcher's display-only reports."""
    history = await client.get_workflow_handle(
        workflow_id_for(TARGET), run_id=run_id
    ).fetch_history()
    messages = []
    for event in history.events:
        kind = EventType.Name(event.event_type)
        signal = event.workflow_execution_signaled_event_attributes.signal_name
        if "UPDATE" in kind or (kind.endswith("_SIGNALED") and signal != HEALTH_REPORT):
            messages.append(f"{event.event_id} {kind} {signal}".strip())
    return tuple(messages)


@pytest.fixture(scope="module")
async def markers(client: Client) -> AsyncIterator[list[WorkflowHandle[Any, Any]]]:
    """Visibility markers started by this module; terminated at the end."""
    handles: list[WorkflowHandle[Any, Any]] = []
    try:
        yield handles
    finally:
        for handle in handles:
            with contextlib.suppress(RPCError):
                await handle.terminate("fuzz e2e done")


async def executions_now(
    client: Client, markers: list[WorkflowHandle[Any, Any]]
) -> frozenset[tuple[str, str]]:
    """Every execution on the dev server, once visibility shows a marker started just now."""
    marker = await client.start_workflow(
        MARKER, id=f"fuzz-marker-{uuid.uuid4().hex[:8]}", task_queue=MARKER_QUEUE
    )
    markers.append(marker)
    seen: frozenset[tuple[str, str]] = frozenset()

    async def marker_visible() -> bool:
        nonlocal seen
        seen = frozenset([(w.id, w.run_id) async for w in client.list_workflows()])
        return (marker.id, marker.result_run_id) in seen

    await eventually(marker_visible, "visibility shows the marker", attempts=400)
    return seen


@pytest.fixture(scope="module")
async def baseline(
    client: Client, running: str, markers: list[WorkflowHandle[Any, Any]]
) -> Baseline:
    """The dev server's executions and what the deployment received, before any bad input."""
    return Baseline(
        run_id=running,
        executions=await executions_now(client, markers),
        messages=await operator_messages(client, running),
        controls=(await status(client)).controls,
    )


# -- `sluice` in process --------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """What `sluice` (its `entry`) ends with: the exit code and the error text on stderr."""

    code: int
    text: str


@pytest.fixture(scope="module")
def sluice(
    dev_server: str, baseline: Baseline, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Said]]:
    """`sluice ARGS` in process on the real app, this module's settings only; errors as `entry`."""
    home = tmp_path_factory.mktemp("home")
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("SLUICEGATE_")}
    env |= {
        "HOME": str(home),
        CONFIG_ENV: None,
        "COLUMNS": "250",
        "SLUICEGATE_TEMPORAL_ADDRESS": dev_server,
        "SLUICEGATE_TASK_QUEUE": TASK_QUEUE,
    }
    runner = CliRunner()
    command = get_command(app)  # what typer's CliRunner builds on every call, built once
    pool = ThreadPoolExecutor(max_workers=1)  # `sluice` runs event loops of its own

    def invoke(*args: str) -> Said:
        result: Result = pool.submit(runner.invoke, command, list(args), env=env).result(120)
        err = result.exception
        if err is None or isinstance(err, SystemExit):
            return Said(result.exit_code, result.stderr)
        assert isinstance(err, SluicegateError | RPCError), (
            f"sluice {' '.join(arg[:60] for arg in args)} would print a traceback:\n"
            + "".join(traceback.format_exception(err))
        )
        code, _ = classify(err)
        return Said(
            code, f"Temporal said: {err.message}" if isinstance(err, RPCError) else str(err)
        )

    try:
        yield invoke
    finally:
        pool.shutdown()


def problems(said: Said) -> list[str]:
    """The problems of a SpecError as printed: one `  - field: why` line each."""
    head, *lines = said.text.split("\n")
    assert head == "invalid deployment spec:", said.text
    found = [line.removeprefix("  - ") for line in lines if line.startswith("  - ")]
    assert found, said.text
    return found


def usage_error(said: Said) -> str:
    """The one line of a command-line usage error (typer prints it in a box)."""
    assert said.code == Exit.ERROR, said
    assert "Traceback" not in said.text
    [line] = [line for line in said.text.splitlines() if line.startswith("│")]
    return line.strip("│ ")


def spec_text(data: Any, suffix: str) -> str:
    """`data` as the text of a spec file named with `suffix`."""
    if suffix == ".json":
        return json.dumps(data)
    return yaml.safe_dump(data)


def refused_spec(data: Any) -> bool:
    """Whether `parse_spec` refuses `data` (else it would start a deployment)."""
    try:
        parse_spec(data)
    except SpecError:
        return True
    return False


NEAR_VALID_SPECS = st.lists(st.tuples(PATHS, JSON), min_size=1, max_size=3).map(
    lambda changes: mutated(spec_data(TARGET), changes)
)
GARBAGE = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.integers(1, 800).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(1, 800).map(lambda depth: ("{a: " * depth + "}" * depth).encode()),
    st.sampled_from([b"", b"---\n", b"null", b"[]", b"42", b"service: [", b"\xef\xbb\xbf{}"]),
)
SUFFIXES = st.sampled_from([".yaml", ".yml", ".json", ""])


@FUZZ
@given(NEAR_VALID_SPECS, SUFFIXES)
def test_deploy_refuses_a_near_valid_spec_naming_each_bad_field(
    sluice: Callable[..., Said], tmp_path_factory: pytest.TempPathFactory, data: Any, suffix: str
) -> None:
    """A valid spec with bad values put in: exit 2, each problem names a spec field."""
    assume(refused_spec(data))
    path = tmp_path_factory.mktemp("spec") / f"spec{suffix}"
    path.write_text(spec_text(data, suffix))
    said = sluice("deploy", str(path))
    CASES["deploy: near-valid spec"] += 1
    assert said.code == Exit.ERROR, said
    for problem in problems(said):
        field = problem.split(":")[0]
        assert field.split(".")[0] in {*FIELDS, "spec", "unknown_field"}, problem


@settings(FUZZ, max_examples=150)
@given(GARBAGE, SUFFIXES)
def test_deploy_refuses_a_garbage_file_naming_it(
    sluice: Callable[..., Said],
    tmp_path_factory: pytest.TempPathFactory,
    content: bytes,
    suffix: str,
) -> None:
    """Any bytes as a spec file: exit 2, each problem names the file or a field."""
    path = tmp_path_factory.mktemp("spec") / f"garbage{suffix}"
    path.write_bytes(content)
    said = sluice("deploy", str(path))
    CASES["deploy: garbage file"] += 1
    assert said.code == Exit.ERROR, said
    for problem in problems(said):
        named = problem.split(": ")[0].split(".")[0]
        assert (
            problem.startswith(f"{path}: ")
            or named in {*FIELDS, "spec"}
            or problem.endswith(": unknown field (check the spelling)")
        ), problem


BAD_SERVICES = st.text(max_size=80).filter(
    lambda name: service_name_problem(name) is not None and not name.startswith("-")
)


def with_required(command: str, service: str) -> list[str]:
    """`COMMAND SERVICE` with the options the command requires."""
    return [command, service, "--reason", "fuzz"] if command == "abort" else [command, service]


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(COMMANDS), BAD_SERVICES)
def test_a_bad_service_argument_is_refused_naming_it(
    sluice: Callable[..., Said], command: str, service: str
) -> None:
    """A bad SERVICE to any command: exit 2 and one problem naming SERVICE."""
    said = sluice(*with_required(command, service))
    CASES["cli: bad SERVICE"] += 1
    assert said.code == Exit.ERROR, said
    [problem] = said.text.splitlines()
    assert problem.startswith("SERVICE: must be 1-63 characters"), problem
    assert repr(service) in problem


# Every option each command takes; one defect below makes any such command line invalid.
OPTIONS: dict[str, tuple[str, ...]] = {
    "promote": ("--full", "--reason", "-r", "--json"),
    "abort": ("--reason", "-r", "--json"),
    "pause": ("--reason", "-r", "--json"),
    "resume": ("--reason", "-r", "--json"),
    "rollback": ("--reason", "-r", "--json"),
    "status": ("--json",),
    "watch": ("--json",),
}
KNOWN = {"--full", "--reason", "-r", "--json", "--help", "-h"}
WORD = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=20,
)
SERVICES = st.sampled_from([TARGET, TARGET, "never-deployed-fuzz"])


@st.composite
def valid_command_line(draw: st.DrawFn) -> list[str]:
    """A command line `sluice` would accept, for TARGET or a service never deployed."""
    command = draw(st.sampled_from(COMMANDS))
    argv = [command, draw(SERVICES)]
    if "--reason" in OPTIONS[command] and (command == "abort" or draw(st.booleans())):
        argv += [
            draw(st.sampled_from(["--reason", "-r"])),
            draw(WORD.filter(lambda w: w[0] != "-")),
        ]
    if "--full" in OPTIONS[command] and draw(st.booleans()):
        argv.append("--full")
    if draw(st.booleans()):
        argv.append("--json")
    return argv


@dataclass(frozen=True)
class Defect:
    """One thing wrong with a command line, and what the error must say about it."""

    argv: list[str]
    says: str


@st.composite
def bad_command_line(draw: st.DrawFn) -> Defect:
    """A valid command line with one defect added, and what the error must say."""
    argv = draw(valid_command_line())
    command = argv[0]
    takes_reason = "--reason" in OPTIONS[command]
    kinds = ["unknown option", "flag with a value", "extra argument"]
    kinds += ["no service"] if command != "status" else []
    kinds += ["dangling reason", "reason too long"] if takes_reason else []
    kinds += ["no reason"] if command == "abort" else []
    kinds += ["--full"] if command != "promote" else []
    kind = draw(st.sampled_from(kinds))
    if kind == "unknown option":
        option = draw(
            st.from_regex(r"--[a-zA-Z][a-zA-Z0-9_-]{0,15}|-[a-zA-Z0-9]", fullmatch=True).filter(
                lambda option: option not in KNOWN
            )
        )
        at_start = draw(st.booleans())
        bad = [command, option, *argv[1:]] if at_start else [*argv, option]
        return Defect(bad, f"No such option: {option}")
    if kind == "flag with a value":
        flag = draw(st.sampled_from([o for o in ("--json", "--full") if o in OPTIONS[command]]))
        return Defect([*argv, f"{flag}={draw(WORD)}"], f"Option '{flag}' does not take a value")
    if kind == "extra argument":
        extra = draw(WORD.filter(lambda word: word[0] != "-"))
        return Defect([*argv, extra], f"Got unexpected extra argument(s) ({extra})")
    if kind == "dangling reason":
        option = draw(st.sampled_from(["--reason", "-r"]))
        return Defect([*argv, option], f"Option '{option}' requires an argument")
    if kind == "no service":
        return Defect([command, *argv[2:]], "Missing argument 'service'")
    if kind == "reason too long":
        length = draw(st.integers(MAX_REASON + 1, 3 * MAX_REASON))
        return Defect([*argv, "--reason", "x" * length], "'--reason'")
    if kind == "no reason":
        return Defect([command, argv[1], *(a for a in argv[4:])], "Missing option '--reason'")
    return Defect([*argv, "--full"], "No such option: --full")


@settings(FUZZ, max_examples=300)
@given(bad_command_line())
def test_a_bad_option_is_refused_naming_it(sluice: Callable[..., Said], defect: Defect) -> None:
    """One bad option or argument: exit 2 and one error line naming it."""
    said = sluice(*defect.argv)
    CASES["cli: bad option"] += 1
    assert defect.says in usage_error(said), (defect, said)


NEVER_DEPLOYED = st.from_regex(r"[a-z0-9]([a-z0-9\-_.]{0,61}[a-z0-9])?", fullmatch=True)


@settings(FUZZ, max_examples=30)
@given(st.sampled_from(COMMANDS), NEVER_DEPLOYED)
def test_a_service_never_deployed_is_not_found(
    sluice: Callable[..., Said], baseline: Baseline, command: str, service: str
) -> None:
    """A valid name never deployed: exit 4, naming it."""
    assume(workflow_id_for(service) not in {workflow for workflow, _ in baseline.executions})
    said = sluice(*with_required(command, service))
    CASES["cli: never deployed"] += 1
    assert said.code == Exit.NOT_FOUND, said
    assert said.text.startswith(f"no deployment of {service!r} found"), said


@settings(FUZZ, max_examples=10)
@given(st.one_of(st.just([]), WORD.filter(lambda w: w[0] != "-").map(lambda r: ["-r", r])))
def test_a_control_the_deployment_refuses_exits_3(
    sluice: Callable[..., Said], reason: list[str]
) -> None:
    """`resume` while not paused: exit 3 with the deployment's refusal."""
    said = sluice("resume", TARGET, *reason)
    CASES["cli: refused"] += 1
    assert said == Said(Exit.REFUSED, "cannot resume: deployment is not paused"), said


# -- chat-ops: a real `sluice chatops` ------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    """Where every slash command's response_url points: nothing may be posted there."""
    fake = FakeSlack()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def chatops_toml() -> str:
    """Settings under which ALICE and the API token may do everything, anywhere, often."""
    rules = "".join(f'{action} = {{ users = ["{ALICE}"] }}\n' for action in CHAT_ACTIONS)
    return (
        "[chatops]\n"
        f'signing_secret = "{SECRET}"\n'
        'rate_limit = "1000000/minute"\n'
        f'[chatops.access."*"]\n{rules}'
        "[[chatops.tokens]]\n"
        'name = "fuzz"\n'
        f'sha256 = "{token_digest(API_TOKEN)}"\n'
        'services = ["*"]\n'
        'actions = ["*"]\n'
    )


@pytest.fixture(scope="module")
async def chatops(
    stack: LocalStack, dev_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, Process]]:
    """`sluice chatops` on a free loopback port, once /healthz answers; stopped by PID."""
    home = tmp_path_factory.mktemp("chatops")
    async with sluice_chatops(stack, dev_server, TASK_QUEUE, chatops_toml(), home) as started:
        yield started


@pytest.fixture(scope="module")
def http(chatops: tuple[str, Process], baseline: Baseline) -> Iterator[httpx.Client]:
    """An HTTP client for the chat-ops service, once the baseline is taken."""
    url, _ = chatops
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def usage_of(text: str) -> str | None:
    """What `/deploy TEXT` is told if it cannot be understood; None if it can."""
    try:
        parse(text)
    except UsageError as err:
        return str(err)
    return None


def not_5xx(answer: httpx.Response, chatops: tuple[str, Process]) -> dict[str, Any]:
    """The JSON object of an answer that is not a server error (else the log's tail)."""
    assert answer.status_code < 500, f"{answer.status_code} {answer.text}\n{chatops[1].tail()}"
    body = answer.json()
    assert isinstance(body, dict), answer.text
    return body


TARGET_WORDS = st.sampled_from([TARGET, TARGET.upper(), f"{TARGET}!", "--full", "--now", "-r"])
SLASH_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(SLASH_WORDS | TARGET_WORDS | WORD, max_size=6).map(" ".join),
    st.tuples(st.sampled_from(CHAT_ACTIONS), TARGET_WORDS, st.text(max_size=30)).map(" ".join),
)


@settings(FUZZ, max_examples=150)
@given(SLASH_TEXT)
def test_a_slash_command_that_cannot_be_understood_gets_its_usage(
    http: httpx.Client, slack: FakeSlack, chatops: tuple[str, Process], text: str
) -> None:
    """Any text `parse` refuses: the same usage message, ephemeral."""
    expected = usage_of(text)
    assume(expected is not None)
    _, body = command_body(slack, ALICE, text)
    answer = http.post("/slack/commands", content=body, headers=signed_headers(body))
    CASES["slack: text"] += 1
    assert answer.status_code == 200, answer.text
    assert not_5xx(answer, chatops) == {"response_type": "ephemeral", "text": expected}


FORM_FIELDS = st.sampled_from(
    ["token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
     "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id"]
)  # fmt: skip


@settings(FUZZ, max_examples=100)
@given(
    SLASH_TEXT,
    st.sets(FORM_FIELDS, max_size=4),
    st.dictionaries(FORM_FIELDS | st.text(max_size=12), st.text(max_size=40), max_size=4),
)
def test_a_slash_command_with_bad_form_fields_is_refused(
    http: httpx.Client,
    slack: FakeSlack,
    chatops: tuple[str, Process],
    text: str,
    dropped: set[str],
    changed: dict[str, str],
) -> None:
    """Fields dropped, changed or added: a 400 or an ephemeral usage message."""
    _, body = command_body(slack, ALICE, text)
    form = {name: value for name, value in parse_qsl(body.decode()) if name not in dropped}
    form |= changed
    expected = usage_of(form.get("text", ""))
    assume(expected is not None or not form.get("user_id") or not form.get("response_url"))
    body = urlencode({**form, f"nonce-{uuid.uuid4().hex}": ""}).encode()  # never a replay
    answer = http.post("/slack/commands", content=body, headers=signed_headers(body))
    CASES["slack: form"] += 1
    reply = not_5xx(answer, chatops)
    if not form.get("user_id") or not form.get("response_url"):
        assert answer.status_code == 400, answer.text
        assert reply == {
            "ok": False,
            "error": "malformed Slack request: a slash command needs user_id and response_url",
        }
    else:
        assert (answer.status_code, reply) == (
            200,
            {"response_type": "ephemeral", "text": expected},
        )


BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def body_refusal(action: str, raw: bytes) -> bool:
    """Whether the API must refuse `raw` as the body of POST .../ACTION."""
    try:
        fields = ControlRequest.model_validate(json.loads(raw) if raw.strip() else {})
    except ValueError:
        return True
    return fields.full and action != "promote"


BODIES = st.one_of(
    JSON.map(lambda data: json.dumps(data).encode()),
    st.fixed_dictionaries(
        {}, optional={"reason": JSON | st.text(max_size=2 * MAX_REASON), "full": JSON}
    ).flatmap(
        lambda data: st.dictionaries(st.text(max_size=10), JSON, max_size=2).map(
            lambda extra: json.dumps({**extra, **data}).encode()
        )
    ),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
)


@settings(FUZZ, max_examples=120)
@given(st.sampled_from(POST_ACTIONS), BODIES)
def test_an_api_request_with_a_bad_body_is_refused_naming_the_field(
    http: httpx.Client, chatops: tuple[str, Process], action: str, raw: bytes
) -> None:
    """Any body the API must refuse: 422 naming the body or the field."""
    assume(body_refusal(action, raw))
    answer = http.post(f"/api/v1/services/{TARGET}/{action}", content=raw, headers=BEARER)
    CASES["api: body"] += 1
    reply = not_5xx(answer, chatops)
    assert answer.status_code == 422, answer.text
    assert reply["ok"] is False
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    names = set(data) if isinstance(data, dict) else set()
    assert any(
        reply["error"].startswith(f"{name}: ") for name in {"body", "reason", "full", *names}
    ), reply


SEGMENT = st.text(max_size=30)
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def routable(segment: str) -> bool:
    """Whether `segment` stays one path segment (httpx drops `.` and `..`; `/` splits)."""
    return segment not in ("", ".", "..") and "/" not in segment


def valid_route(method: str, path: str) -> bool:
    """Whether METHOD PATH is a request the API would carry out (if its body were valid)."""
    parts = path.split("/")
    if len(parts) < 2 or parts[0] != "services" or service_name_problem(parts[1]):
        return False
    return (method, len(parts)) == ("GET", 2) or (
        (method, len(parts)) == ("POST", 3) and parts[2] in POST_ACTIONS
    )


@dataclass(frozen=True)
class BadRequest:
    """A request the API must refuse; `status` and `says` when they can be told exactly."""

    method: str
    path: str
    status: int | None = None
    says: str = ""


@st.composite
def bad_api_request(draw: st.DrawFn) -> BadRequest:
    """A bad service or action, a wrong method, or any path under /api/v1/."""
    kind = draw(st.sampled_from(["service", "action", "method", "anything"]))
    if kind == "service":
        service = draw(SEGMENT.filter(lambda name: service_name_problem(name) is not None))
        action = draw(st.sampled_from(["", *(f"/{action}" for action in POST_ACTIONS)]))
        path = f"/api/v1/services/{quote(service, safe='')}{action}"
        method = "POST" if action else "GET"
        if not routable(service):
            return BadRequest(method, path)
        return BadRequest(method, path, 422, "service: must be 1-63 characters")
    if kind == "action":
        action = draw(SEGMENT.filter(lambda action: action not in POST_ACTIONS))
        path = f"/api/v1/services/{TARGET}/{quote(action, safe='')}"
        if not routable(action):
            return BadRequest("POST", path)
        return BadRequest("POST", path, 404, f"unknown action {action!r}")
    if kind == "method":
        method = draw(st.sampled_from(METHODS))
        action = draw(st.sampled_from(["", *(f"/{action}" for action in POST_ACTIONS)]))
        assume((method, bool(action)) not in {("GET", False), ("POST", True)})
        path = f"/api/v1/services/{TARGET}{action}"
        return BadRequest(method, path, 405, f"{method} is not allowed on {path}")
    method = draw(st.sampled_from(METHODS))
    tail = draw(st.text(max_size=60))
    assume(not valid_route(method, tail.rstrip("/")) and not {".", ".."} & set(tail.split("/")))
    return BadRequest(method, "/api/v1/" + quote(tail, safe="/"))


@settings(FUZZ, max_examples=120)
@given(bad_api_request())
def test_an_api_request_to_a_bad_path_is_refused(
    http: httpx.Client, chatops: tuple[str, Process], bad: BadRequest
) -> None:
    """A bad service, action, method or path: a 4xx with a message (exact when known)."""
    answer = http.request(bad.method, bad.path, headers=BEARER, follow_redirects=True)
    CASES["api: path"] += 1
    reply = not_5xx(answer, chatops)
    assert 400 <= answer.status_code < 500, answer.text
    assert reply["ok"] is False and reply["error"], answer.text
    if bad.status is not None:
        assert answer.status_code == bad.status, answer.text
        assert reply["error"].startswith(bad.says), reply


# -- after all of it ------------------------------------------------------------------------


async def test_no_bad_input_started_or_signalled_anything(
    client: Client,
    baseline: Baseline,
    markers: list[WorkflowHandle[Any, Any]],
    slack: FakeSlack,
) -> None:
    """After every test above: no new workflow; the deployment got no signal or update."""
    if not CASES:
        pytest.skip("run with the rest of the module: it checks what the tests before it sent")
    after = await executions_now(client, markers)
    started = {
        execution for execution in after - baseline.executions if execution[0] != markers[-1].id
    }
    assert not started, f"bad input started workflows: {sorted(started)} (cases: {dict(CASES)})"
    messages = await operator_messages(client, baseline.run_id)
    assert messages == baseline.messages, (
        f"bad input signalled or updated it (cases: {dict(CASES)})"
    )
    state = await status(client)
    assert state.controls == baseline.controls
    description = await client.get_workflow_handle(workflow_id_for(TARGET)).describe()
    assert (description.run_id, state.phase) == (baseline.run_id, "progressing"), state
    assert slack.replies == {}, "a bad slash command was answered through its response_url"
