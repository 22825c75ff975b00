"""Lifecycle hooks and smoke checks inside a deployment: the workflow on Temporal's test
server, the routing scripted, the hooks real (a command the worker's settings declare, an
HTTP server, smoke requests to a real local service)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.hooks import HookRunner
from bench.scripted import ScriptedActivities
from frontends.client.deployments import start_deployment
from sluicegate.contracts import DeploymentResult
from sluicegate.settings import CommandSetting, Settings
from sluicegate.spec import DeploymentSpec
from tests.local_http import LocalServer
from tests.test_hooks import Site, handler_for
from tests.test_workflow import unique_spec
from workers.main import build_worker

ONE_STAGE = [{"name": "only", "weight": 20, "bake": "PT10M"}]
TWO_STAGES = [*ONE_STAGE, {"name": "more", "weight": 60, "bake": "PT10M"}]
# A command the worker declares: it appends the event it ran for to a log, and fails
# when asked to with --fail=yes.
SCRIPT = """
import json, os, sys
context = json.load(sys.stdin)
with open(os.environ["HOOK_LOG"], "a") as log:
    log.write(json.dumps({"event": context["event"], "weight": context["weight"],
                          "args": sys.argv[1:]}) + "\\n")
sys.exit(1 if "--fail=yes" in sys.argv else 0)
"""


class Hooked:
    """A worker whose `record` command logs each run; the log, read back."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "hooks.log"
        script = tmp_path / "record.py"
        script.write_text(SCRIPT)
        self.settings = Settings(
            commands={
                "record": CommandSetting(
                    argv=(sys.executable, str(script)),
                    arguments=("fail",),
                    env={"HOOK_LOG": str(self.log)},
                )
            }
        )

    def runs(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def hooked(tmp_path: Path) -> Hooked:
    return Hooked(tmp_path)


@pytest.fixture
def service() -> Iterator[Site]:
    """A real local service the smoke checks hit: 200 `ok` unless told otherwise."""
    site = Site([(200, "ok")])
    site.server = LocalServer(handler_for(site), poll_interval=0.05)
    yield site
    site.server.close()


def record(name: str, fail: bool = False) -> dict[str, Any]:
    return {
        "type": "command",
        "name": name,
        "command": "record",
        "args": {"fail": "yes" if fail else "no"},
    }


@asynccontextmanager
async def deployment(
    env: WorkflowEnvironment,
    task_queue: str,
    acts: ScriptedActivities,
    hooked: Hooked,
    spec: DeploymentSpec,
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    runner = HookRunner(hooked.settings)
    async with build_worker(
        env.client, task_queue, activities=[*acts.activities(), runner.run_hook]
    ):
        yield await start_deployment(env.client, spec, task_queue)


def hooked_spec(task_queue: str, service: Site, **overrides: Any) -> DeploymentSpec:
    return unique_spec(
        task_queue,
        canary={"version": "v2", "address": service.address},
        **{"stages": ONE_STAGE, **overrides},
    )


async def test_a_whole_release_runs_every_hook_in_its_place(
    time_skipping_env: WorkflowEnvironment, task_queue: str, hooked: Hooked, service: Site
) -> None:
    acts = ScriptedActivities()
    spec = hooked_spec(
        task_queue,
        service,
        stages=TWO_STAGES,
        hooks={
            "pre_rollout": [record("start-canary-fleet")],
            "pre_stage": [record("load-test")],
            "post_promotion": [record("retire-old-fleet")],
            "on_rollback": [record("scale-canary-down")],
        },
        smoke=[{"name": "health", "requests": 3, "body_contains": "ok"}],
    )
    async with deployment(time_skipping_env, task_queue, acts, hooked, spec) as handle:
        result: DeploymentResult = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome == "promoted", result.reason
    assert [(run["event"], run["weight"]) for run in hooked.runs()] == [
        ("pre_rollout", 0), ("pre_stage", 0), ("pre_stage", 20), ("post_promotion", 0),
    ]  # fmt: skip
    assert [(h.name, h.ok) for h in result.hooks] == [
        ("start-canary-fleet", True), ("health", True), ("load-test", True),
        ("load-test", True), ("health", True), ("retire-old-fleet", True),
    ]  # fmt: skip
    assert len(service.seen) == 6  # three smoke requests before any user, three at 100%
    # The old fleet is retired only after the guard at 100% has passed.
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    kinds = [a.activity_type.name for a in scheduled]
    guard = max(i for i, a in enumerate(scheduled) if a.activity_type.name == "watch_health")
    assert kinds.index("run_hook") < kinds.index("set_traffic")  # hooks before any traffic
    assert max(i for i, k in enumerate(kinds) if k == "run_hook") > guard


async def test_a_failing_smoke_check_moves_no_traffic(
    time_skipping_env: WorkflowEnvironment, task_queue: str, hooked: Hooked, service: Site
) -> None:
    service.answers = [(500, "broken build")]
    acts = ScriptedActivities()
    spec = hooked_spec(
        task_queue,
        service,
        hooks={"pre_rollout": [record("start")], "on_rollback": [record("stop")]},
        smoke=[{"name": "health", "requests": 2}],
    )
    async with deployment(time_skipping_env, task_queue, acts, hooked, spec) as handle:
        result: DeploymentResult = await handle.result()
    assert result.outcome == "not_started"
    assert acts.weights == []
    assert "smoke hook health (smoke) failed" in result.reason
    assert "before any traffic moved" in result.reason
    assert [run["event"] for run in hooked.runs()] == ["pre_rollout", "on_rollback"]
    failed = result.hooks[-2]
    assert (failed.name, failed.ok) == ("health", False) and "500" in failed.output + failed.detail


async def test_a_failing_pre_rollout_hook_moves_no_traffic_and_keeps_its_output(
    time_skipping_env: WorkflowEnvironment, task_queue: str, hooked: Hooked, service: Site
) -> None:
    acts = ScriptedActivities()
    spec = hooked_spec(task_queue, service, hooks={"pre_rollout": [record("start", fail=True)]})
    async with deployment(time_skipping_env, task_queue, acts, hooked, spec) as handle:
        result: DeploymentResult = await handle.result()
    assert result.outcome == "not_started" and acts.weights == []
    assert "pre_rollout hook start (command) failed" in result.reason
    (run,) = result.hooks
    assert run.status == 1


async def test_a_failing_pre_stage_hook_rolls_back_before_the_next_increase(
    time_skipping_env: WorkflowEnvironment, task_queue: str, hooked: Hooked, service: Site
) -> None:
    gate = Site([(204, ""), (503, "load test failed: p99 900 ms")])
    gate.server = LocalServer(handler_for(gate), poll_interval=0.05)
    try:
        acts = ScriptedActivities()
        http = {"type": "http", "name": "load-test", "url": gate.url(), "attempts": 1}
        spec = hooked_spec(task_queue, service, stages=TWO_STAGES, hooks={"pre_stage": [http]})
        async with deployment(time_skipping_env, task_queue, acts, hooked, spec) as handle:
            result: DeploymentResult = await handle.result()
    finally:
        gate.server.close()
    assert result.outcome == "rolled_back"
    assert acts.weights == [20] and acts.rollbacks == 1
    assert "pre_stage hook load-test (http) failed" in result.reason
    assert "before stage more" in result.reason
    sent = json.loads(gate.seen[1].body)
    assert (sent["event"], sent["stage"], sent["weight"]) == ("pre_stage", "more", 20)


async def test_a_failing_cleanup_hook_leaves_the_release_promoted_and_says_so(
    time_skipping_env: WorkflowEnvironment, task_queue: str, hooked: Hooked, service: Site
) -> None:
    acts = ScriptedActivities()
    spec = hooked_spec(task_queue, service, hooks={"post_promotion": [record("retire", fail=True)]})
    async with deployment(time_skipping_env, task_queue, acts, hooked, spec) as handle:
        result: DeploymentResult = await handle.result()
    assert result.outcome == "promoted"
    assert "post_promotion hook retire (command) failed" in result.reason
    assert acts.notifications[-1].evidence[0].startswith("post_promotion hook retire")
