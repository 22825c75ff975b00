"""The short activities of a deployment, as it calls them: by name, with their timeouts,
retries and the summaries the Web UI shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import (
        BACKUP,
        SET_TRAFFIC,
        BackupInput,
        BackupRecord,
        RouterState,
        SetTrafficInput,
    )
    from sluicegate.spec import DeploymentSpec, RouterSpec
    from workflows.retries import QUICK_HEARTBEAT, QUICK_RETRIES

Routing = Callable[[BackupRecord], RouterState]  # one router instance's, from its backup

# Cancelling these waits until the activity has stopped: a traffic shift still in flight
# must not land after a rollback, nor a routing keeper re-apply its weight over the next
# stage's. (A stage's watcher asks the server instead: workflows/watch.py.)
WAIT = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


async def take_backup(spec: DeploymentSpec, router: RouterSpec, where: str = "") -> BackupRecord:
    """Back up one router instance (`where` names it in a fleet)."""
    return await workflow.execute_activity(
        BACKUP,
        BackupInput(
            service=spec.service,
            deployment_id=workflow.info().run_id,
            router=router,
            backup=spec.backup,
            expected_stable=spec.stable.endpoints,
            canary_endpoints=spec.canary.endpoints,
            weights=tuple(stage.weight for stage in spec.stages),
        ),
        result_type=BackupRecord,
        task_queue=router.task_queue,
        start_to_close_timeout=timedelta(seconds=30),
        heartbeat_timeout=QUICK_HEARTBEAT,
        retry_policy=QUICK_RETRIES,
        summary=f"back up {router.type} routing of {spec.service}{where}",
    )


async def set_traffic(router: RouterSpec, desired: RouterState, summary: str) -> RouterState:
    """Apply `desired` to one router instance; returns what it read back."""
    return await workflow.execute_activity(
        SET_TRAFFIC,
        SetTrafficInput(router=router, desired=desired),
        result_type=RouterState,
        task_queue=router.task_queue,
        start_to_close_timeout=timedelta(seconds=30),
        heartbeat_timeout=QUICK_HEARTBEAT,
        retry_policy=QUICK_RETRIES,
        cancellation_type=WAIT,
        summary=summary,
    )


def stage_routing(spec: DeploymentSpec, backup: BackupRecord, weight: int) -> RouterState:
    """A stage's routing: `weight`% to the canary, the rest to the backed-up stable."""
    return RouterState(
        canary_weight=weight,
        stable_endpoints=backup.state.stable_endpoints,
        canary_endpoints=spec.canary.endpoints,
    )


def weighted(spec: DeploymentSpec, weight: int) -> Routing:
    """`stage_routing` at `weight`, for each router instance's backup."""
    return lambda backup: stage_routing(spec, backup, weight)


def promotion(spec: DeploymentSpec, weight: int) -> list[tuple[Routing, str]]:
    """The shifts that make the canary the stable version, from `weight`% canary: all
    traffic to it, stable pointed at it, then it served as stable."""
    canary = spec.canary.endpoints
    version = spec.canary.version

    full = weighted(spec, 100)

    def stable_at_canary(backup: BackupRecord) -> RouterState:
        return full(backup).model_copy(update={"stable_endpoints": canary})

    def served_as_stable(_: BackupRecord) -> RouterState:
        return RouterState(canary_weight=0, stable_endpoints=canary, canary_endpoints=canary)

    return [
        *([(full, f"shift 100% → {version}")] if weight < 100 else []),
        (stable_at_canary, f"point stable at {version}"),
        (served_as_stable, f"serve {version} as stable"),
    ]
