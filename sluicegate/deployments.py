"""Start deployments, reach running ones and follow them: one place for every front end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from sluicegate import visibility
from sluicegate.contracts import WATCH_HEALTH, CheckReport
from sluicegate.errors import DeploymentAlreadyRunning
from sluicegate.spec import DeploymentSpec, Stage, workflow_id_for
from workflows.canary import CanaryDeployment
from workflows.details import short_duration
from workflows.state import FINISHED, DeploymentResult, DeploymentStatus

QUERY_TIMEOUT = timedelta(seconds=5)


async def start_deployment(
    client: Client, spec: DeploymentSpec, task_queue: str
) -> WorkflowHandle[CanaryDeployment, DeploymentResult]:
    """Start `CanaryDeployment` for `spec`; refuse if one is already running for the service."""
    try:
        return await client.start_workflow(
            CanaryDeployment.run,
            spec,
            id=spec.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{spec.service}: {spec.stable.version} → {spec.canary.version}",
            static_details=_plan(spec),
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.DEPLOY_SERVICE, spec.service),
                    SearchAttributePair(visibility.DEPLOY_CANARY_VERSION, spec.canary.version),
                ]
            ),
        )
    except WorkflowAlreadyStartedError as err:
        raise DeploymentAlreadyRunning(
            f"a deployment of {spec.service} is already running: workflow {err.workflow_id} "
            f"(run {err.run_id}); promote, abort or wait for it before starting another"
        ) from None


def deployment_handle(
    client: Client, service: str
) -> WorkflowHandle[CanaryDeployment, DeploymentResult]:
    """The latest deployment of `service`, running or finished."""
    return client.get_workflow_handle_for(CanaryDeployment.run, workflow_id_for(service))


def _plan(spec: DeploymentSpec) -> str:
    stages = ", ".join(_stage_plan(stage) for stage in spec.stages)
    return f"Stages: {stages}; then 100%. Checks every {short_duration(spec.analysis.interval)}."


def _stage_plan(stage: Stage) -> str:
    gate = ", then a manual gate" if stage.manual_gate else ""
    return f"{stage.name} {stage.weight}% for {short_duration(stage.bake)}{gate}"


async def live_check(client: Client, workflow_id: str) -> CheckReport | None:
    """The health watcher's latest check, read from its heartbeat (as the Web UI shows it)."""
    description = await client.get_workflow_handle(workflow_id).describe()
    for pending in description.raw_description.pending_activities:
        details = pending.heartbeat_details.payloads
        if pending.activity_type.name == WATCH_HEALTH and details:
            [report] = await client.data_converter.decode(details, [CheckReport])
            return report
    return None


async def follow(
    client: Client, workflow_id: str, poll: timedelta = timedelta(milliseconds=250)
) -> AsyncIterator[DeploymentStatus | CheckReport]:
    """Yield each new status (phase, stage, weight, pause or a control changed) and each new
    live check."""
    handle = client.get_workflow_handle_for(CanaryDeployment.run, workflow_id)
    shown_status: tuple[object, ...] | None = None
    shown_check: CheckReport | None = None
    while True:
        try:
            status = await handle.query(CanaryDeployment.status, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowQueryFailedError:
            return
        except RPCError:  # no worker answered in time: it may be restarting
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return
            await asyncio.sleep(poll.total_seconds())
            continue
        key = (
            status.phase,
            status.stage,
            status.canary_weight,
            status.paused,
            len(status.controls),
        )
        if key != shown_status:
            shown_status = key
            yield status
        if status.phase in FINISHED:
            return
        check = await live_check(client, workflow_id)
        if check is not None and check != shown_check:
            shown_check = check
            yield check
        await asyncio.sleep(poll.total_seconds())
