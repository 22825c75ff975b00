"""RestoreRelease on the time-skipping server: back up what is there, then restore until done."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.scripted import STABLE, ScriptedActivities, make_spec
from frontends.client.deployments import start_deployment
from frontends.client.operations import start_restore
from sluicegate.contracts import (
    BackupRecord,
    ControlInput,
    RestoreInput,
    RestoreResult,
    RouterState,
)
from sluicegate.errors import DeploymentAlreadyRunning
from sluicegate.spec import BackupSpec
from workers.main import build_worker
from workflows.canary import CanaryDeployment

PROMOTED = RouterState(canary_weight=0, stable_endpoints=("10.0.0.2:80",), canary_endpoints=())
BEFORE = RouterState(canary_weight=0, stable_endpoints=(STABLE,), canary_endpoints=())


def restore_input(service: str) -> RestoreInput:
    return RestoreInput(
        service=service,
        router=make_spec(service).router,
        backup_store=BackupSpec(directory="/nonexistent"),
        backup_id="before-v2",
        backup=BackupRecord(path="memory/before-v2", sha256="0" * 64, state=BEFORE),
        by="alice@laptop",
        reason="v2 breaks reports",
    )


async def restored(client: Client, task_queue: str, acts: ScriptedActivities) -> RestoreResult:
    async with build_worker(client, task_queue, activities=acts.activities()):
        handle = await start_restore(client, task_queue, restore_input(f"svc-{task_queue}"))
        return await handle.result()


async def test_backs_up_the_current_routing_then_restores(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(state=PROMOTED)
    result = await restored(time_skipping_env.client, task_queue, acts)
    assert acts.snapshots == [PROMOTED]  # taken before anything changed
    assert result.undo.state == PROMOTED
    assert result.state == BEFORE == acts.state
    assert (result.backup_id, result.by, result.reason) == (
        "before-v2",
        "alice@laptop",
        "v2 breaks reports",
    )


async def test_a_failing_restore_is_retried_until_it_works(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    # Two rounds of five attempts fail; the third round (2 s, then 4 s later) works.
    acts = ScriptedActivities(state=PROMOTED, rollback_failures=10)
    result = await restored(time_skipping_env.client, task_queue, acts)
    assert result.state == BEFORE
    assert acts.rollbacks == 11


async def test_refused_while_a_deployment_of_the_service_runs(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    acts = ScriptedActivities()
    async with build_worker(client, task_queue, activities=acts.activities()):
        handle = await start_deployment(client, make_spec(service), task_queue)
        with pytest.raises(DeploymentAlreadyRunning, match="abort it"):
            await start_restore(client, task_queue, restore_input(service))
        # End it the normal way: terminating on the time-skipping server stalls later tests.
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
        # not_started when the abort lands while stable is measured, before any traffic
        assert (await handle.result()).outcome in ("rolled_back", "not_started")
