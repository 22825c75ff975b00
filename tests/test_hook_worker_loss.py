"""A worker killed inside a hook, on the real stack: the hook's activity stops
heartbeating, Temporal retries it on another worker, the hook runs again (hooks must be
idempotent) and the deployment carries on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from deploy.processes import Process, start_module
from deploy.stack import LocalStack, Site
from frontends.client.deployments import start_deployment
from sluicegate.contracts import DeploymentResult
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "hook-worker-loss"
# The hook: note its PID, then hold until the test releases it (its own work, e.g. a
# deploy that takes a while), then pass.
SCRIPT = """
import os, sys, time
from pathlib import Path
here = Path(sys.argv[0]).parent
with open(here / "runs", "a") as runs:
    runs.write(f"{os.getpid()}\\n")
while not (here / "release").exists():
    time.sleep(0.05)
"""


class HookWorkers:
    """Worker processes whose settings declare the `slow` command; the hook's runs."""

    def __init__(self, stack: LocalStack, dev_server: str, root: Path) -> None:
        self.root = root
        (root / "slow.py").write_text(SCRIPT)
        commands = {"slow": {"argv": [sys.executable, str(root / "slow.py")]}}
        self.env = {
            "SLUICEGATE_TEMPORAL_ADDRESS": dev_server,
            "SLUICEGATE_TASK_QUEUE": TASK_QUEUE,
            "SLUICEGATE_COMMANDS": json.dumps(commands),
        }
        self.log_dir = stack.log_dir
        self.workers: list[Process] = []

    def start(self) -> Process:
        name = f"hook-worker-{len(self.workers)}"
        worker = start_module(name, "workers.main", [], self.log_dir, self.env)
        self.workers.append(worker)
        return worker

    def runs(self) -> list[int]:
        path = self.root / "runs"
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def release(self) -> None:
        (self.root / "release").touch()

    def close(self) -> None:
        self.release()
        for worker in self.workers:
            worker.stop()
        for pid in self.runs():  # a killed worker's hook outlives it: stop it by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@pytest.fixture
def workers(stack: LocalStack, dev_server: str, tmp_path: Path) -> Iterator[HookWorkers]:
    workers = HookWorkers(stack, dev_server, tmp_path)
    try:
        yield workers
    finally:
        workers.close()


async def test_a_worker_killed_inside_a_hook_runs_it_again_elsewhere(
    stack: LocalStack, client: Client, workers: HookWorkers
) -> None:
    site = Site(stack, "hook-worker-loss")
    try:
        spec = site.spec(stages=[{"name": "canary", "weight": 10, "bake": "PT2S"}])
        hook = {"type": "command", "name": "deploy-canary", "command": "slow"}
        spec = spec.model_validate({**spec.model_dump(), "hooks": {"pre_rollout": [hook]}})
        first = workers.start()
        handle = await start_deployment(client, spec, TASK_QUEUE)
        await eventually(lambda: len(workers.runs()) == 1, "the hook runs", attempts=1200)
        first.kill()  # SIGKILL, as a crash: the hook's activity stops heartbeating
        workers.start()
        await eventually(lambda: len(workers.runs()) == 2, "the hook runs again", attempts=1200)
        workers.release()
        result: DeploymentResult = await handle.result()
        state = await site.router_state()
    finally:
        site.stop()
    assert result.outcome == "promoted", result.reason
    (ran,) = result.hooks
    assert (ran.name, ran.ok) == ("deploy-canary", True)
    assert state.stable_endpoints == (site.canary.address,)
