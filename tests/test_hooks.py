"""The `run_hook` activity against real things: local HTTP servers, real commands (small
Python scripts written to tmp_path) and their processes. No mocks of HTTP or processes.

Waiting is on events (a server's request, a process's exit through a pidfd), never on
sleeps; nothing asserts how long something took.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.hooks import HookRunner
from deploy.processes import free_port
from sluicegate.contracts import HookContext, HookResult, RunHookInput
from sluicegate.contracts.hooks import MAX_OUTPUT
from sluicegate.settings import CommandSetting, Settings
from sluicegate.spec import CommandHook, HookSpec, HooksSpec, HttpHook, SmokeHook
from tests.local_http import LocalServer, QuietHandler
from workers.client import DATA_CONVERTER

CONTEXT = HookContext(
    service="checkout",
    stable_version="v1",
    canary_version="v2",
    event="pre_rollout",
    stage=None,
    weight=0,
    stable_endpoints=("10.0.0.1:8080",),
    canary_endpoints=("10.0.0.2:8080", "10.0.0.3:8080"),
    workflow_id="deploy-checkout",
    run_id="run-1",
)


# --- local servers -----------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Site:
    """A local HTTP server giving `answers` in turn (the last one repeats), recording
    every request; with `hold`, each request waits for that event before answering."""

    answers: list[tuple[int, str]]
    hold: threading.Event | None = None
    seen: list[Seen] = field(default_factory=list[Seen])
    arrived: threading.Event = field(default_factory=threading.Event)
    server: LocalServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.address

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.address}{path}"


def handler_for(site: Site) -> type[QuietHandler]:
    lock = threading.Lock()

    class Handler(QuietHandler):
        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                site.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                status, text = site.answers[min(len(site.seen), len(site.answers)) - 1]
            site.arrived.set()
            if site.hold is not None:
                site.hold.wait()
            payload = text.encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting
                self.close_connection = True

        do_GET = answer
        do_POST = answer

    return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(answers, hold=None) → a running Site; every held request is released and
    every server stopped at teardown."""
    sites: list[Site] = []

    def start(answers: list[tuple[int, str]] | None = None, hold: bool = False) -> Site:
        site = Site(answers or [(200, "ok")], threading.Event() if hold else None)
        site.server = LocalServer(handler_for(site), poll_interval=0.05)
        sites.append(site)
        return site

    yield start
    for site in sites:
        if site.hold is not None:
            site.hold.set()
    for site in sites:
        assert site.server is not None
        site.server.close()


def closed_address() -> str:
    return f"127.0.0.1:{free_port()}"


# --- running the activity ----------------------------------------------------------------


async def run(
    hook: HookSpec,
    commands: dict[str, CommandSetting] | None = None,
    endpoints: tuple[str, ...] = (),
    context: HookContext = CONTEXT,
    heartbeats: list[object] | None = None,
) -> HookResult:
    env = ActivityEnvironment()
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(details)
    runner = HookRunner(Settings.defaults().model_copy(update={"commands": commands or {}}))
    request = RunHookInput(hook=hook, context=context, endpoints=endpoints)
    return await env.run(runner.run_hook, request)


def http_hook(url: str, **fields: Any) -> HttpHook:
    return HttpHook(name="notify-ci", url=url, **fields)


# --- http --------------------------------------------------------------------------------


async def test_http_hook_posts_the_context_and_a_2xx_passes(serve: Any) -> None:
    site = serve([(200, "cache warmed")])
    heartbeats: list[object] = []

    result = await run(http_hook(site.url()), heartbeats=heartbeats)

    assert (result.ok, result.kind, result.name) == (True, "http", "notify-ci")
    assert (result.status, result.attempts, result.output) == (200, 1, "cache warmed")
    assert result.detail == "HTTP 200"
    [request] = site.seen
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-sluicegate-hook"] == "notify-ci"
    assert "authorization" not in request.headers
    assert HookContext.model_validate_json(request.body) == CONTEXT
    assert heartbeats  # it heartbeats while it runs


async def test_a_500_fails_after_every_attempt_with_the_body_kept(serve: Any) -> None:
    site = serve([(500, "database is down\nstack trace...")])

    result = await run(http_hook(site.url(), attempts=2))

    assert (result.ok, result.status, result.attempts) == (False, 500, 2)
    assert result.detail == "HTTP 500: database is down"
    assert result.output == "database is down\nstack trace..."
    assert len(site.seen) == 2
    assert "failed" in result.describe() and "2 attempts" in result.describe()


async def test_one_failure_is_tried_again(serve: Any) -> None:
    site = serve([(503, "starting"), (204, "")])

    result = await run(http_hook(site.url()))

    assert (result.ok, result.status, result.attempts) == (True, 204, 2)
    assert len(site.seen) == 2


async def test_a_4xx_is_final(serve: Any) -> None:
    site = serve([(404, "no such hook")])

    result = await run(http_hook(site.url(), attempts=3))

    assert (result.ok, result.status, result.attempts) == (False, 404, 1)
    assert result.detail == "HTTP 404: no such hook"
    assert len(site.seen) == 1


async def test_a_long_body_is_cut_to_the_evidence_limit(serve: Any) -> None:
    site = serve([(500, "x" * (MAX_OUTPUT * 3))])

    result = await run(http_hook(site.url(), attempts=1))

    assert not result.ok
    assert len(result.output) <= MAX_OUTPUT
    assert result.output.startswith("xxxx")


async def test_no_answer_within_the_timeout_fails(serve: Any) -> None:
    site = serve(hold=True)  # answers only at teardown

    result = await run(http_hook(site.url(), timeout=timedelta(seconds=1), attempts=1))

    assert (result.ok, result.status, result.attempts) == (False, None, 1)
    assert result.detail == "no answer within 1 s"
    assert len(site.seen) == 1


async def test_no_server_fails_naming_the_error() -> None:
    result = await run(http_hook(f"http://{closed_address()}/hook", attempts=1))

    assert not result.ok
    assert result.detail.startswith("no answer: ConnectError")


async def test_the_bearer_token_comes_from_the_workers_environment(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = serve()
    monkeypatch.setenv("CI_HOOK_TOKEN", "s3cret")

    result = await run(http_hook(site.url(), token_env="CI_HOOK_TOKEN"))

    assert result.ok
    assert site.seen[0].headers["authorization"] == "Bearer s3cret"


async def test_a_missing_token_variable_fails_without_a_request(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = serve()
    monkeypatch.delenv("CI_HOOK_TOKEN", raising=False)

    result = await run(http_hook(site.url(), token_env="CI_HOOK_TOKEN"))

    assert (result.ok, result.attempts) == (False, 0)
    assert "CI_HOOK_TOKEN" in result.detail
    assert site.seen == []


# --- command -----------------------------------------------------------------------------

TOOL = """\
import json, os, sys
context = json.load(sys.stdin)
ours = {k: v for k, v in os.environ.items() if k.startswith("SLUICEGATE_") or k == "EXTRA"}
print(json.dumps({"argv": sys.argv[1:], "context": context, "env": ours, "cwd": os.getcwd()}))
sys.stdout.flush()
code = int(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--exit=")), "0"))
print(f"finished with {code}", file=sys.stderr)
sys.exit(code)
"""

# Starts a child in its own process group, tells the test both pids over HTTP, then
# sleeps (--then=sleep) or exits at once leaving the child running (--then=exit).
LINGER = """\
import os, subprocess, sys, time, urllib.request
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
urllib.request.urlopen(f"{args['announce']}?pids={os.getpid()},{child.pid}").read()
if args["then"] == "exit":
    sys.exit(0)
time.sleep(600)
"""


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{text}")
    path.chmod(0o755)
    return str(path)


def announced_pids(site: Site) -> list[int]:
    query = parse_qs(urlsplit(site.seen[0].path).query)
    return [int(pid) for pid in query["pids"][0].split(",")]


def wait_gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie counts), waiting up to 10 s on its pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], 10)
        return bool(readable)
    finally:
        os.close(fd)


@pytest.fixture
def tool(tmp_path: Path) -> dict[str, CommandSetting]:
    return {
        "retire-fleet": CommandSetting(
            argv=(script(tmp_path, "tool.py", TOOL), "--fixed"),
            arguments=("region", "exit"),
            env={"EXTRA": "from-settings"},
            cwd=tmp_path,
        )
    }


async def test_a_command_gets_the_context_on_stdin_and_in_its_environment(
    tool: dict[str, CommandSetting], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICEGATE_API_KEY", "worker-secret")
    context = CONTEXT.model_copy(update={"event": "pre_stage", "stage": "pilot", "weight": 25})
    hook = CommandHook(name="retire", command="retire-fleet", args={"region": "eu west; rm -rf /"})

    result = await run(hook, tool, context=context)

    assert (result.ok, result.kind, result.status, result.attempts) == (True, "command", 0, 1)
    assert result.detail == "exit 0"
    said = json.loads(result.output.splitlines()[0])
    assert said["argv"] == ["--fixed", "--region=eu west; rm -rf /"]  # no shell, one item
    assert HookContext.model_validate(said["context"]) == context
    assert said["cwd"] == str(tmp_path)
    assert said["env"] == {
        "EXTRA": "from-settings",
        "SLUICEGATE_HOOK": "retire",
        "SLUICEGATE_EVENT": "pre_stage",
        "SLUICEGATE_SERVICE": "checkout",
        "SLUICEGATE_STABLE_VERSION": "v1",
        "SLUICEGATE_CANARY_VERSION": "v2",
        "SLUICEGATE_STAGE": "pilot",
        "SLUICEGATE_WEIGHT": "25",
        "SLUICEGATE_STABLE_ENDPOINTS": "10.0.0.1:8080",
        "SLUICEGATE_CANARY_ENDPOINTS": "10.0.0.2:8080,10.0.0.3:8080",
        "SLUICEGATE_WORKFLOW_ID": "deploy-checkout",
        "SLUICEGATE_RUN_ID": "run-1",
    }  # the worker's own SLUICEGATE_API_KEY stays behind
    assert result.output.splitlines()[-1] == "finished with 0"  # stderr captured too


async def test_a_nonzero_exit_fails_with_its_output(tool: dict[str, CommandSetting]) -> None:
    hook = CommandHook(name="retire", command="retire-fleet", args={"exit": "3"})

    result = await run(hook, tool)

    assert (result.ok, result.status, result.attempts) == (False, 3, 1)
    assert result.detail == "exit 3: finished with 3"
    assert "--exit=3" in result.output


async def test_a_command_past_its_timeout_is_killed_with_its_group(
    tmp_path: Path, serve: Any
) -> None:
    announce = serve()
    commands = {
        "linger": CommandSetting(
            argv=(script(tmp_path, "linger.py", LINGER), f"--announce={announce.url('/pids')}"),
            arguments=("then",),
        )
    }
    hook = CommandHook(
        name="slow", command="linger", args={"then": "sleep"}, timeout=timedelta(seconds=2)
    )

    result = await run(hook, commands)

    assert (result.ok, result.status) == (False, None)
    assert result.detail == "no exit within 2 s: its process group was killed"
    leader, child = announced_pids(announce)
    assert wait_gone(leader)
    assert wait_gone(child)


async def test_what_a_command_leaves_running_is_killed_when_it_exits(
    tmp_path: Path, serve: Any
) -> None:
    """The leftover holds stdout open; the hook still ends when the command exits."""
    announce = serve()
    commands = {
        "linger": CommandSetting(
            argv=(script(tmp_path, "linger.py", LINGER), f"--announce={announce.url('/pids')}"),
            arguments=("then",),
        )
    }
    hook = CommandHook(name="quick", command="linger", args={"then": "exit"})

    result = await run(hook, commands)

    assert (result.ok, result.status) == (True, 0)
    _, child = announced_pids(announce)
    assert wait_gone(child)


async def test_a_cancelled_hook_kills_its_command(tmp_path: Path, serve: Any) -> None:
    announce = serve()
    commands = {
        "linger": CommandSetting(
            argv=(script(tmp_path, "linger.py", LINGER), f"--announce={announce.url('/pids')}"),
            arguments=("then",),
        )
    }
    hook = CommandHook(name="slow", command="linger", args={"then": "sleep"})
    env = ActivityEnvironment()
    runner = HookRunner(Settings.defaults().model_copy(update={"commands": commands}))
    running = asyncio.create_task(
        env.run(runner.run_hook, RunHookInput(hook=hook, context=CONTEXT))
    )
    try:
        assert await asyncio.to_thread(announce.arrived.wait, 30)
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        running.cancel()
    leader, child = announced_pids(announce)
    assert wait_gone(leader)
    assert wait_gone(child)


async def test_an_unknown_command_names_the_known_ones(tool: dict[str, CommandSetting]) -> None:
    result = await run(CommandHook(name="retire", command="retire-flet"), tool)

    assert (result.ok, result.attempts, result.status) == (False, 0, None)
    assert "'retire-flet' is not in this worker's settings" in result.detail
    assert result.detail.endswith("known commands: retire-fleet")


async def test_no_commands_at_all() -> None:
    result = await run(CommandHook(name="retire", command="retire-fleet"))

    assert not result.ok
    assert result.detail.endswith("known commands: none")


async def test_an_undeclared_argument_names_the_declared_ones(
    tool: dict[str, CommandSetting],
) -> None:
    hook = CommandHook(name="retire", command="retire-fleet", args={"regoin": "eu"})

    result = await run(hook, tool)

    assert (result.ok, result.attempts) == (False, 0)
    assert "does not declare the argument regoin" in result.detail
    assert result.detail.endswith("declared arguments: region, exit")


async def test_a_program_that_cannot_start_fails(tmp_path: Path) -> None:
    commands = {"gone": CommandSetting(argv=(str(tmp_path / "missing"),))}

    result = await run(CommandHook(name="g", command="gone"), commands)

    assert (result.ok, result.attempts) == (False, 0)
    assert result.detail.startswith(f"cannot start {tmp_path / 'missing'}")


async def test_long_output_keeps_its_end(tmp_path: Path) -> None:
    noisy = script(tmp_path, "noisy.py", "print('x' * 100000)\nprint('the real error')\n")
    result = await run(
        CommandHook(name="n", command="noisy"), {"noisy": CommandSetting(argv=(noisy,))}
    )

    assert result.ok
    assert len(result.output) <= MAX_OUTPUT
    assert result.output.startswith("[100016 bytes in all, only the last ones kept]")
    assert result.output.endswith("the real error\n")


# --- smoke -------------------------------------------------------------------------------


async def test_smoke_passes_when_every_request_to_every_endpoint_does(serve: Any) -> None:
    first, second = serve([(200, "status: healthy")]), serve([(200, "healthy")])
    hook = SmokeHook(name="smoke", requests=3, path="/health?deep=1", body_contains="healthy")

    result = await run(hook, endpoints=(first.address, second.address))

    assert (result.ok, result.kind, result.status) == (True, "smoke", None)
    assert result.detail.startswith("6 requests to 2 endpoints passed")
    for site in (first, second):
        assert [(seen.method, seen.path) for seen in site.seen] == [("GET", "/health?deep=1")] * 3


async def test_smoke_hits_the_canary_endpoints_by_default(serve: Any) -> None:
    canary = serve()
    context = CONTEXT.model_copy(update={"canary_endpoints": (canary.address,)})

    result = await run(SmokeHook(name="smoke", requests=2), context=context)

    assert result.ok
    assert len(canary.seen) == 2


async def test_smoke_fails_when_one_endpoint_answers_500(serve: Any) -> None:
    good, bad = serve(), serve([(500, "boom")])

    result = await run(SmokeHook(name="smoke", requests=3), endpoints=(good.address, bad.address))

    assert not result.ok
    assert result.detail == (
        f"3 of 6 requests to 2 endpoints failed; first: {bad.address}: request 1: HTTP 500 "
        "(expected 200)"
    )
    assert result.output.splitlines() == [
        f"{good.address}: 0 of 3 failed",
        f"{bad.address}: 3 of 3 failed",
        "first failures:",
        *(f"{bad.address}: request {n}: HTTP 500 (expected 200)" for n in (1, 2, 3)),
    ]


async def test_smoke_fails_when_the_body_lacks_the_text(serve: Any) -> None:
    site = serve([(200, "maintenance mode")])
    hook = SmokeHook(name="smoke", requests=2, body_contains="healthy")

    result = await run(hook, endpoints=(site.address,))

    assert not result.ok
    assert "request 1: body does not contain 'healthy'" in result.detail
    assert result.detail.startswith("2 of 2 requests to 1 endpoint failed")


async def test_smoke_fails_a_request_slower_than_max_latency(serve: Any) -> None:
    fast, slow = serve(), serve(hold=True)  # slow answers only at teardown
    hook = SmokeHook(name="smoke", requests=2, max_latency=timedelta(milliseconds=200))

    result = await run(hook, endpoints=(fast.address, slow.address))

    assert not result.ok
    assert result.detail.startswith("2 of 4 requests to 2 endpoints failed")
    assert (
        f"{slow.address}: request 1: no complete answer within max_latency (200 ms)"
        in result.output
    )
    assert f"{fast.address}: 0 of 2 failed" in result.output


async def test_smoke_fails_an_endpoint_that_is_down(serve: Any) -> None:
    up, down = serve(), closed_address()

    result = await run(SmokeHook(name="smoke", requests=2), endpoints=(up.address, down))

    assert not result.ok
    assert f"{down}: request 1: no answer: ConnectError" in result.output


async def test_smoke_without_endpoints_fails() -> None:
    context = CONTEXT.model_copy(update={"canary_endpoints": ()})

    result = await run(SmokeHook(name="smoke"), context=context)

    assert (result.ok, result.attempts, result.detail) == (False, 0, "no endpoints to check")


# --- the specs and the result ------------------------------------------------------------


def test_hooks_come_from_the_spec_by_type() -> None:
    hooks = HooksSpec.model_validate(
        {
            "pre_rollout": [
                {"type": "http", "name": "ci", "url": "https://ci.example/hook", "timeout": "PT5S"},
                {"type": "command", "name": "warm", "command": "warm-cache", "args": {"size": "9"}},
            ],
            "post_promotion": [{"type": "smoke", "name": "smoke", "max_latency": 0.5}],
        }
    )

    assert [type(hook) for hook in hooks.at("pre_rollout")] == [HttpHook, CommandHook]
    assert hooks.at("post_promotion") == (
        SmokeHook(name="smoke", max_latency=timedelta(seconds=0.5)),
    )
    assert hooks.at("on_rollback") == () == hooks.at("smoke")
    assert HooksSpec() == HooksSpec.model_validate({})


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (
            {"pre_stage": [{"type": "smoke", "name": "a"}, {"type": "smoke", "name": "a"}]},
            ["pre_stage: hook names must be unique, got a"],
        ),
        ({"pre_rollout": [{"type": "shell", "name": "a"}]}, ["pre_rollout.0", "'http', 'command'"]),
        (
            {"pre_rollout": [{"type": "command", "name": "a", "command": "x", "line": "rm -rf /"}]},
            ["pre_rollout.0.command.line", "Extra inputs"],
        ),
        (
            {"pre_rollout": [{"type": "command", "name": "a", "command": "/bin/sh -c"}]},
            ["pre_rollout.0.command.command", "pattern"],
        ),
        (
            {"pre_rollout": [{"type": "http", "name": "a", "url": "ftp://x", "timeout": 3600}]},
            ["pre_rollout.0.http.url", "pre_rollout.0.http.timeout", "1 s to 600 s"],
        ),
        (
            {"on_rollback": [{"type": "smoke", "name": "a", "path": "health", "requests": 0}]},
            ["on_rollback.0.smoke.path", "on_rollback.0.smoke.requests"],
        ),
    ],
)
def test_bad_hooks_are_refused_naming_the_field(data: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        HooksSpec.model_validate(data)

    for word in words:
        assert word in str(caught.value)


def test_time_limits_cover_every_attempt() -> None:
    http = HttpHook(name="a", url="http://x/y", timeout=timedelta(seconds=10), attempts=3)
    command = CommandHook(name="b", command="c", timeout=timedelta(minutes=1))

    assert http.time_limit() >= timedelta(seconds=30 + 0.5 + 1)
    assert command.time_limit() > timedelta(minutes=1)
    assert SmokeHook(name="s").time_limit() > timedelta(seconds=60)


@pytest.mark.parametrize(
    "hook",
    [
        HttpHook(name="ci", url="https://ci.example/hook", token_env="CI_TOKEN"),
        CommandHook(name="retire", command="retire-fleet", args={"region": "eu"}),
        SmokeHook(name="smoke", body_contains="ok", max_latency=timedelta(milliseconds=250)),
    ],
    ids=lambda hook: hook.type,
)
def test_the_input_and_result_cross_the_data_converter(hook: HookSpec) -> None:
    """What the workflow schedules is what the activity gets, and back."""
    request = RunHookInput(hook=hook, context=CONTEXT, endpoints=("127.0.0.1:8080",))
    result = HookResult(name=hook.name, kind=hook.type, ok=True, detail="fine", seconds=0.5)
    converter = DATA_CONVERTER.payload_converter

    [payload] = converter.to_payloads([request])
    assert converter.from_payloads([payload], [RunHookInput]) == [request]
    [payload] = converter.to_payloads([result])
    assert converter.from_payloads([payload], [HookResult]) == [result]


def test_a_result_is_one_line_and_bounded() -> None:
    result = HookResult(
        name="ci", kind="http", ok=False, detail="HTTP 500:\n" + "y" * 1000, output="z" * 10**5
    )

    assert "\n" not in result.detail and len(result.detail) <= 300
    assert len(result.output) <= MAX_OUTPUT
    assert result.describe().startswith("hook ci (http) failed: HTTP 500: yyy")


def test_a_result_recorded_with_fewer_fields_still_decodes() -> None:
    assert HookResult.model_validate(
        {"name": "ci", "kind": "smoke", "ok": True, "detail": "fine"}
    ) == HookResult(name="ci", kind="smoke", ok=True, detail="fine", output="", attempts=1)


# --- docs/HOOKS.md -----------------------------------------------------------------------

HOOKS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "HOOKS.md"


def page_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", HOOKS_PAGE.read_text(), re.M | re.S)


def test_the_pages_spec_example_validates() -> None:
    hooks_block, smoke_block = page_blocks("yaml")
    hooks = HooksSpec.model_validate(yaml.safe_load(hooks_block)["hooks"])
    (smoke,) = (SmokeHook.model_validate(each) for each in yaml.safe_load(smoke_block)["smoke"])
    assert smoke.body_contains == "ok"

    assert [hook.type for hook in hooks.pre_rollout + hooks.pre_stage] == ["http", "smoke"]
    assert hooks.post_promotion[0] == CommandHook(
        name="retire-old-fleet", command="retire-fleet", args={"region": "eu-west-1"}
    )


def test_the_pages_payload_is_the_hook_context() -> None:
    [block] = page_blocks("json")
    data = json.loads(block)

    assert json.loads(HookContext.model_validate(data).model_dump_json()) == data
    assert sorted(data) == sorted(HookContext.model_fields)


def test_the_pages_commands_are_valid_settings() -> None:
    [block] = page_blocks("toml")
    tables = tomllib.loads(block)["commands"]
    commands = {name: CommandSetting.model_validate(table) for name, table in tables.items()}

    assert commands["retire-fleet"].arguments == ("region", "dry-run")
    assert commands["warm-cache"].argv == ("/usr/local/bin/warm-cache",)
