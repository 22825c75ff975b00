"""The `sluice` CLI, run as a subprocess against a real dev server, a `sluice worker`,
Envoy, sample services and load: every command's happy path and its main refusals."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import subprocess
import threading
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from deploy.processes import REPO_ROOT, Process, free_port, venv_binary
from deploy.stack import LocalStack, Site
from sluicegate.contracts import RouterState
from tests.stack_fixtures import sluice_worker
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "cli"
QUICK_STAGES = [
    {"name": "canary", "weight": 10, "bake": "PT2S"},
    {"name": "pilot", "weight": 50, "bake": "PT2S"},
]
GATED_STAGES = [{"name": "review", "weight": 20, "bake": "PT1S", "manual_gate": True}]
SMOKE = [{"type": "smoke", "name": "canary-up", "requests": 3}]


class Sluice:
    """Runs `sluice` with the test's settings; only the environment given here applies."""

    def __init__(self, home: Path, address: str) -> None:
        self.env = {
            "PATH": os.environ["PATH"],
            # This checkout's code, not that of the one the virtualenv was installed from.
            "PYTHONPATH": str(REPO_ROOT),
            "HOME": str(home),  # no ~/.config/sluicegate from the machine running the tests
            "COLUMNS": "250",
            "SLUICEGATE_TEMPORAL_ADDRESS": address,
            "SLUICEGATE_TASK_QUEUE": TASK_QUEUE,
        }

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> CompletedProcess[str]:
        return subprocess.run(
            [venv_binary("sluice"), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def sluice(dev_server: str, tmp_path_factory: pytest.TempPathFactory) -> Sluice:
    return Sluice(tmp_path_factory.mktemp("home"), dev_server)


@pytest.fixture(scope="module")
async def worker(stack: LocalStack, sluice: Sluice, dev_server: str) -> AsyncIterator[Process]:
    """`sluice worker` on the test task queue, once it polls."""
    async with sluice_worker(stack, dev_server, TASK_QUEUE, sluice.env) as process:
        yield process


def spec_file(site: Site, tmp_path: Path, **overrides: Any) -> Path:
    path = tmp_path / f"{site.name}.json"
    overrides.setdefault("stages", QUICK_STAGES)
    overrides.setdefault("failed_checks_tolerated", 1)  # one slow check on a busy CI box
    path.write_text(site.spec(**overrides).model_dump_json())
    return path


def assert_exit(done: CompletedProcess[str], code: int, *words: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}:\n{output}"
    for word in words:
        assert word in output, f"{word!r} not in:\n{output}"


# -- without Temporal ----------------------------------------------------------------------


COMMANDS = [
    "deploy", "watch", "status", "history", "promote", "abort", "pause", "resume",
    "rollback", "backup", "backups", "restore", "health", "test", "worker",
    "chatops", "chatops-token",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_with_an_example(sluice: Sluice, command: str) -> None:
    assert_exit(sluice(command, "--help"), 0, "Example", "Usage: sluice " + command)


def test_an_invalid_spec_is_refused_naming_each_field(sluice: Sluice, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("service: Checkout\nstable: {version: v1}\n")
    done = sluice("deploy", str(bad), env={"SLUICEGATE_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert_exit(done, 2, "service", "stable: address required", "canary", "router")
    assert "Traceback" not in done.stderr


def test_unreachable_temporal_is_one_clear_line(sluice: Sluice) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = sluice("status", env={"SLUICEGATE_TEMPORAL_ADDRESS": address})
    assert_exit(done, 2, f"cannot reach Temporal at {address}")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_settings_file_names_the_setting(sluice: Sluice, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('temporal_adress = "127.0.0.1:7233"\n')
    done = sluice("--config", str(config), "status")
    assert_exit(done, 2, "unknown setting 'temporal_adress'", str(config))


def test_an_invalid_service_name_is_refused(sluice: Sluice) -> None:
    assert_exit(sluice("status", "Not A Service"), 2, "SERVICE", "a-z")


# -- against the dev server and a `sluice worker` -----------------------------------------


def test_deploy_watch_promotes_and_history_tells_who(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    done = sluice("deploy", str(spec_file(site, tmp_path)), "--watch")
    assert_exit(done, 0, f"deploy-{site.name}", "/namespaces/default/workflows/", "promoted")

    [record] = sluice.json("history", site.name)
    assert record["outcome"] == "promoted"
    assert (record["stable_version"], record["canary_version"]) == ("v1", "v2")
    assert record["started_by"].startswith("sluice ")
    assert_exit(sluice("status", site.name), 0, "nothing running", "promoted")
    assert_exit(sluice("history", site.name), 0, "v1 → v2", "promoted")


def test_the_worker_logs_a_line_per_event_not_per_request(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path)), "--watch"), 0, "promoted")
    lines = worker.log.read_text().splitlines()
    assert not [line for line in lines if "HTTP Request" in line or " httpx" in line]
    mine = [line for line in lines if f"deploy-{site.name} CanaryDeployment: " in line]
    events = [line.split("CanaryDeployment: ")[1].split(":")[0] for line in mine]
    assert events == ["started", "stage_advanced", "stage_advanced", "guarding", "promoted"], mine


async def test_rollback_after_promotion_restores_the_previous_release(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path)), "--watch"), 0, "promoted")
    assert_exit(
        sluice("rollback", site.name, "--reason", "v2 breaks reports"),
        0,
        "restored backup",
        f"100% stable {site.stable.address}",
        "to undo: sluice restore",
    )
    after = await site.router_state()
    assert after == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=after.canary_endpoints,
    )
    restore, deployment = sluice.json("history", site.name)
    assert (restore["kind"], restore["outcome"]) == ("RestoreRelease", "restored")
    assert "v2 breaks reports" in restore["reason"]
    assert deployment["outcome"] == "promoted"
    assert_exit(sluice("rollback", site.name), 3, "nothing to roll back")


async def test_controls_from_the_cli_and_their_refusals(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path, stages=GATED_STAGES))), 0)
    assert_exit(sluice("resume", site.name), 3, "cannot resume: deployment is not paused")

    running = sluice.json("status")
    [mine] = [row for row in running if row["service"] == site.name]
    assert mine["started_by"].startswith("sluice ")

    def at_the_gate() -> bool:
        return sluice.json("status", site.name)["phase"] == "awaiting_approval"

    await eventually(at_the_gate, "the deployment waits at its manual gate", attempts=200)
    assert_exit(sluice("abort", site.name, "--reason", "wrong build"), 0, "abort: accepted")
    assert_exit(sluice("promote", site.name), 3, "cannot promote")
    assert_exit(sluice("watch", site.name), 1, "rolled_back", "aborted by", "wrong build")
    assert_exit(sluice("pause", site.name), 3, "nothing running")


async def test_a_rollback_without_a_reason_records_that_it_came_from_the_cli(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path, stages=GATED_STAGES))), 0)

    def at_the_gate() -> bool:
        return sluice.json("status", site.name)["phase"] == "awaiting_approval"

    await eventually(at_the_gate, "the deployment waits at its manual gate", attempts=200)
    assert_exit(sluice("rollback", site.name), 0, "rolled_back", "rolled back from the CLI")
    [record] = sluice.json("history", site.name)
    assert record["controls"][-1]["reason"] == "rolled back from the CLI"


async def test_deploy_supersede_replaces_the_running_deployment(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path, stages=GATED_STAGES))), 0)

    def at_the_gate() -> bool:
        return sluice.json("status", site.name)["phase"] == "awaiting_approval"

    await eventually(at_the_gate, "the deployment waits at its manual gate", attempts=200)
    spec = site.spec(stages=QUICK_STAGES, failed_checks_tolerated=1)
    v3 = tmp_path / "v3.json"
    v3.write_text(
        spec.model_copy(
            update={"canary": spec.canary.model_copy(update={"version": "v3"})}
        ).model_dump_json()
    )
    assert_exit(sluice("deploy", str(v3)), 3, "already running", "sluice deploy --supersede")

    done = sluice("deploy", str(v3), "--supersede", "--watch")
    assert_exit(
        done,
        0,
        f"superseding: supersede-{site.name}",
        "aborted CanaryDeployment run",
        "which ended rolled_back: aborted by",
        "superseded by v3",
        f"started deploy-{site.name}",
        "promoted",
    )
    new, old = sluice.json("history", site.name)
    assert old["outcome"] == "rolled_back"
    assert old["reason"].startswith("aborted by ") and old["reason"].endswith(": superseded by v3")
    assert (new["canary_version"], new["outcome"]) == ("v3", "promoted")
    assert new["started_by"] == f"supersede-{site.name}", "started by the supersede workflow"


class Output:
    """A process's stdout, line by line as it comes (read by a thread, never blocking)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self.reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.reader.start()

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


async def test_watch_in_a_pipe_prints_each_change_as_it_happens(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    spec = spec_file(site, tmp_path, stages=GATED_STAGES, top_level={"smoke": SMOKE})
    assert_exit(sluice("deploy", str(spec)), 0)
    watching = subprocess.Popen(
        [venv_binary("sluice"), "watch", site.name],
        env=sluice.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = Output(watching)
        # Still running: these lines come while the deployment waits, not at its end.
        await eventually(lambda: output.has("awaiting_approval"), "the gate is shown", 1200)
        await eventually(lambda: output.has("check #"), "a judged check is shown", 1200)
        assert watching.poll() is None
        assert_exit(sluice("abort", site.name, "--reason", "not today"), 0, "abort: accepted")
        assert watching.wait(timeout=120) == 1
        output.reader.join(timeout=10)
    finally:
        watching.kill()
        watching.wait()
    text = "".join(output.lines)
    assert "operator: abort by" in text and "not today" in text, text
    assert "[smoke before any traffic] hook canary-up (smoke) passed" in text, text
    assert "rolled_back" in text, text
    assert "\x1b[" not in text, "no terminal codes in a pipe"


class Terminal:
    """A process's output to a pseudo-terminal, as a person would see it (read by a thread)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        main, side = pty.openpty()
        env = {**env, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
        self.process = subprocess.Popen(argv, env=env, stdin=side, stdout=side, stderr=side)
        os.close(side)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, args=(main,), daemon=True)
        self.reader.start()

    def _read(self, fd: int) -> None:
        with contextlib.suppress(OSError):  # EIO once the process has closed its side
            while chunk := os.read(fd, 4096):
                self.chunks.append(chunk)
        os.close(fd)

    def has(self, text: str) -> bool:
        return text in self.screen()

    def screen(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


async def test_watch_in_a_terminal_redraws_the_live_view_until_the_end(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    spec = spec_file(site, tmp_path, stages=GATED_STAGES, top_level={"smoke": SMOKE})
    assert_exit(sluice("deploy", str(spec)), 0)
    terminal = Terminal([venv_binary("sluice"), "watch", site.name], sluice.env)
    try:
        await eventually(lambda: terminal.has("awaiting_approval"), "the gate is shown", 1200)
        checked = re.compile(r"check \d+ at \d\d:\d\d:\d\d")
        await eventually(lambda: checked.search(terminal.screen()), "a check is shown", 1200)
        assert terminal.process.poll() is None
        assert_exit(sluice("abort", site.name, "--reason", "not today"), 0, "abort: accepted")
        assert terminal.process.wait(timeout=120) == 1
        terminal.reader.join(timeout=10)
    finally:
        terminal.process.kill()
        terminal.process.wait()
    assert terminal.has("\x1b["), "a terminal gets the live view"
    assert terminal.has("not today") and terminal.has("rolled_back")
    assert terminal.has("hook canary-up (smoke) passed")


async def test_pause_and_resume_hold_the_bake(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    stages = [{"name": "canary", "weight": 10, "bake": "PT1H"}]
    assert_exit(sluice("deploy", str(spec_file(site, tmp_path, stages=stages))), 0)

    async def baking() -> bool:
        return sluice.json("status", site.name)["bake"] is not None

    await eventually(baking, "the canary stage is baking", attempts=200)
    assert_exit(sluice("pause", site.name, "-r", "batch job"), 0, "pause: accepted")

    def paused() -> bool:
        status = sluice.json("status", site.name)
        return status["phase"] == "paused" and status["bake"]["ends_at"] is None

    await eventually(paused, "the bake clock stops while paused", attempts=100)
    assert_exit(sluice("resume", site.name), 0, "resume: accepted")
    assert_exit(sluice("promote", site.name, "--full", "-r", "ship it"), 0, "promote: accepted")
    done = sluice("watch", site.name)
    assert_exit(done, 0, "promoted", "pause by", "batch job", "promote --full by", "ship it")


async def test_history_lists_specs_the_workflow_refused(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    """Started with the raw `temporal` CLI, a misspelt field fails the run in milliseconds;
    history still lists it, with the reason, also when the misspelt field is `service`."""
    data = json.loads(site.spec(stages=QUICK_STAGES).model_dump_json())
    data["analysis"]["intervall"] = data["analysis"].pop("interval")
    misnamed = {("servce" if key == "service" else key): value for key, value in data.items()}

    def refused_runs_listed(count: int) -> bool:
        rows = sluice.json("history", site.name)
        return len(rows) == count and all(row["outcome"] == "failed" for row in rows)

    for count, spec in enumerate((data, misnamed), start=1):
        path = tmp_path / "refused.json"
        path.write_text(json.dumps(spec))
        started = subprocess.run(
            [venv_binary("temporal"), "workflow", "start", "--type", "CanaryDeployment",
             "--address", sluice.env["SLUICEGATE_TEMPORAL_ADDRESS"], "--task-queue", TASK_QUEUE,
             "--workflow-id", f"deploy-{site.name}", "--input-file", str(path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        await eventually(partial(refused_runs_listed, count), "the refused run listed", 400)
    records = sluice.json("history", site.name)
    assert [r["outcome"] for r in records] == ["failed", "failed"]
    assert "servce" in records[0]["reason"] and "intervall" in records[1]["reason"]
    assert all(r["service"] == site.name for r in records)
    assert records[1]["canary_version"] == "v2"
    assert_exit(sluice("history", site.name), 0, "failed", "intervall")


async def test_a_refused_backup_ends_not_started_not_rolled_back(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    """The spec names the wrong stable: nothing moves, and it is no failed release."""
    path = tmp_path / "swapped.json"
    path.write_text(site.spec(stable=site.canary, canary=site.stable).model_dump_json())
    done = sluice("deploy", str(path), "--watch")
    assert_exit(done, 1, "not_started", "backup failed, no traffic moved", site.stable.address)
    [record] = sluice.json("history", site.name)
    assert record["outcome"] == "not_started"
    query = f'DeployService = "{site.name}" AND DeployOutcome = "not_started"'
    listed = subprocess.run(
        [venv_binary("temporal"), "workflow", "count", "--query", query,
         "--address", sluice.env["SLUICEGATE_TEMPORAL_ADDRESS"]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.stdout.split() == ["Total:", "1"], listed
    assert await site.router_state() == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(await site.router_state()).canary_endpoints,
    )


def test_unknown_service_and_nothing_running(sluice: Sluice, worker: Process) -> None:
    for command in (["promote"], ["abort", "-r", "x"], ["status"], ["watch"], ["rollback"]):
        assert_exit(sluice(*command, "never-deployed"), 4, "no deployment of 'never-deployed'")
    assert_exit(sluice("history", "never-deployed"), 4)


def test_backup_list_and_restore(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    spec = str(spec_file(site, tmp_path))
    taken = sluice.json("backup", site.name, "--spec", spec)
    backup_id = Path(taken["path"]).name
    [listed] = sluice.json("backups", site.name, "--spec", spec)
    assert (listed["id"], listed["sha256"], listed["verified"]) == (
        backup_id,
        taken["sha256"],
        True,
    )
    assert_exit(sluice("backups", site.name, "--spec", spec), 0, backup_id, "yes")

    done = sluice("restore", site.name, backup_id, "--spec", spec, "-r", "drill")
    assert_exit(done, 0, f"restored backup {backup_id}", "to undo")
    assert_exit(sluice("restore", site.name, "no-such-backup", "--spec", spec), 4, "no backup")
    assert len(sluice.json("backups", site.name, "--spec", spec)) == 2  # the undo backup


def test_health_and_pre_deployment_test(
    sluice: Sluice, worker: Process, site: Site, tmp_path: Path
) -> None:
    spec = str(spec_file(site, tmp_path))
    health = sluice.json("health", spec)
    assert health["stable"]["status"] == "healthy", health
    assert health["overall"] in ("healthy", "inconclusive")  # the canary has no traffic yet
    assert_exit(sluice("health", spec), 0, "error_rate", "latency_p99_ms", "≤ 1% > 200 ms")

    done = sluice("test", spec)
    assert_exit(done, 0, "ready to deploy", "stable served", "stable within error_rate ≤ 1%")

    broken = tmp_path / "broken.json"
    data = json.loads(Path(spec).read_text())
    data["router"]["admin_url"] = f"http://127.0.0.1:{free_port()}"
    broken.write_text(json.dumps(data))
    assert_exit(sluice("test", str(broken)), 1, "failed: router")
    by_name = tmp_path / "by-name.json"
    data = json.loads(Path(spec).read_text())
    data["canary"]["address"] = "localhost:" + data["canary"]["address"].rpartition(":")[2]
    by_name.write_text(json.dumps(data))
    done = sluice("test", str(by_name))
    assert_exit(done, 1, "failed: router", "stage at 10%", "Envoy EDS endpoints need IP:port")
    done = sluice("test", spec, env={"SLUICEGATE_TASK_QUEUE": "nobody-polls-this"})
    assert_exit(done, 1, "failed: worker", "not checked")


def test_no_worker_is_one_clear_line(sluice: Sluice, site: Site, tmp_path: Path) -> None:
    spec = str(spec_file(site, tmp_path))
    done = sluice("backups", site.name, "--spec", spec, env={"SLUICEGATE_TASK_QUEUE": "idle"})
    assert_exit(done, 2, "no worker polls task queue 'idle'")
