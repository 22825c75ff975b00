"""The short activities of a deployment, as it calls them: by name, with their timeouts,
retries and the summaries the Web UI shows."""

from __future__ import annotations

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
    from sluicegate.spec import DeploymentSpec
    from workflows.retries import QUICK_HEARTBEAT, QUICK_RETRIES

# Cancelling these waits until the activity has stopped: a traffic shift still in flight
# must not land after a rollback, nor a watcher re-apply its weight over the next stage's.
WAIT = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


async def take_backup(spec: DeploymentSpec) -> BackupRecord:
    return await workflow.execute_activity(
        BACKUP,
        BackupInput(
            service=spec.service,
            deployment_id=workflow.info().run_id,
            router=spec.router,
            backup=spec.backup,
            expected_stable=spec.stable.endpoints,
        ),
        result_type=BackupRecord,
        start_to_close_timeout=timedelta(seconds=30),
        heartbeat_timeout=QUICK_HEARTBEAT,
        retry_policy=QUICK_RETRIES,
        summary=f"back up {spec.router.type} routing of {spec.service}",
    )


async def set_traffic(spec: DeploymentSpec, desired: RouterState, summary: str) -> RouterState:
    """Apply `desired`; returns what the router read back."""
    return await workflow.execute_activity(
        SET_TRAFFIC,
        SetTrafficInput(router=spec.router, desired=desired),
        result_type=RouterState,
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


def promotion(
    spec: DeploymentSpec, backup: BackupRecord, weight: int
) -> list[tuple[RouterState, str]]:
    """The shifts that make the canary the stable version, from `weight`% canary: all
    traffic to it, stable pointed at it, then it served as stable."""
    canary = spec.canary.endpoints
    version = spec.canary.version
    full = stage_routing(spec, backup, 100)
    steps = [(full, f"shift 100% → {version}")] if weight < 100 else []
    return [
        *steps,
        (full.model_copy(update={"stable_endpoints": canary}), f"point stable at {version}"),
        (
            RouterState(canary_weight=0, stable_endpoints=canary, canary_endpoints=canary),
            f"serve {version} as stable",
        ),
    ]
