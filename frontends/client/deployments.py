"""Start deployments, reach running ones and follow them: one place for every front end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

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
from sluicegate.contracts import (
    CANARY_DEPLOYMENT,
    FINISHED,
    STATUS,
    WATCH_HEALTH,
    CheckReport,
    DeploymentResult,
    DeploymentStatus,
)
from sluicegate.describe import plan
from sluicegate.errors import DeploymentAlreadyRunning
from sluicegate.spec import DeploymentSpec, workflow_id_for

QUERY_TIMEOUT = timedelta(seconds=5)
# A deployment's handle: started and reached by the workflow's name, never its code.
DeploymentHandle = WorkflowHandle[Any, DeploymentResult]


async def start_deployment(
    client: Client, spec: DeploymentSpec, task_queue: str
) -> DeploymentHandle:
    """Start `CanaryDeployment` for `spec`; refuse if one is already running for the service."""
    try:
        return await client.start_workflow(
            CANARY_DEPLOYMENT,
            spec,
            id=spec.workflow_id,
            result_type=DeploymentResult,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{spec.service}: {spec.stable.version} → {spec.canary.version}",
            static_details=plan(spec),
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


def deployment_handle(client: Client, service: str, run_id: str | None = None) -> DeploymentHandle:
    """The latest deployment of `service` (or its run `run_id`), running or finished."""
    return handle_for(client, workflow_id_for(service), run_id)


def handle_for(client: Client, workflow_id: str, run_id: str | None = None) -> DeploymentHandle:
    return client.get_workflow_handle(workflow_id, run_id=run_id, result_type=DeploymentResult)


async def query_status(
    handle: DeploymentHandle, timeout: timedelta | None = QUERY_TIMEOUT
) -> DeploymentStatus:
    """The deployment's `status` query; raises RPCError when no worker answers in time."""
    return await handle.query(STATUS, result_type=DeploymentStatus, rpc_timeout=timeout)


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
    handle = handle_for(client, workflow_id)
    shown_status: tuple[object, ...] | None = None
    shown_check: CheckReport | None = None
    while True:
        try:
            status = await query_status(handle)
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
