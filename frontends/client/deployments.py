"""Start deployments, reach running ones and follow them: one place for every front end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from sluicegate import visibility
from sluicegate.contracts import (
    CANARY_DEPLOYMENT,
    FINISHED,
    STATUS,
    SUPERSEDE_DEPLOYMENT,
    WATCH_HEALTH,
    CheckReport,
    DeploymentResult,
    DeploymentStatus,
    SupersedeInput,
    SupersedeResult,
    supersede_id_for,
)
from sluicegate.describe import plan
from sluicegate.errors import DeploymentAlreadyRunning, SluicegateError, SpecError
from sluicegate.spec import DeploymentSpec, parse_spec, workflow_id_for

QUERY_TIMEOUT = timedelta(seconds=5)
# A deployment's handle: started and reached by the workflow's name, never its code.
DeploymentHandle = WorkflowHandle[Any, DeploymentResult]
SupersedeHandle = WorkflowHandle[Any, SupersedeResult]


async def start_deployment(
    client: Client, spec: DeploymentSpec, task_queue: str
) -> DeploymentHandle:
    """Start `CanaryDeployment` for `spec`; refuse if one is already running for the service,
    or a supersede of it is under way (it is about to start its own)."""
    await refuse_while_superseding(client, spec.service, "starting another")
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
            f"(run {err.run_id}); promote, abort or wait for it before starting another, "
            "or supersede it (`sluice deploy --supersede`)"
        ) from None


async def supersede_deployment(
    client: Client, spec: DeploymentSpec, task_queue: str, request: SupersedeInput
) -> SupersedeHandle:
    """Start `SupersedeDeployment` (workflow `supersede-<service>`) for `spec`: it aborts the
    running deployment of the service, if any, waits until its rollback is done, then starts
    `spec`'s deployment. Returns at once; `superseded(handle)` waits until it has started.
    Refused while another supersede of the service is under way."""
    service = spec.service
    try:
        return await client.start_workflow(
            SUPERSEDE_DEPLOYMENT,
            args=[spec, request],
            id=supersede_id_for(service),
            result_type=SupersedeResult,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{service}: supersede with {spec.canary.version}",
            static_details=plan(spec),
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(visibility.DEPLOY_SERVICE, service),
                    SearchAttributePair(visibility.DEPLOY_CANARY_VERSION, spec.canary.version),
                ]
            ),
        )
    except WorkflowAlreadyStartedError as err:
        version = await superseding_version(client, service) or "another version"
        raise DeploymentAlreadyRunning(
            f"a supersede of {service} to {version} is already under way: workflow "
            f"{err.workflow_id} (run {err.run_id}); wait until it has started {version}, "
            "then supersede that"
        ) from None


async def superseded(handle: SupersedeHandle) -> SupersedeResult:
    """The supersede's result, once the new deployment has started; its failure as our error
    (e.g. DeploymentAlreadyRunning when another deployment took the id meanwhile)."""
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "DeploymentAlreadyRunning":
            raise DeploymentAlreadyRunning(cause.message) from None
        raise SluicegateError(f"the supersede {handle.id} failed: {cause}") from None


async def superseding_version(client: Client, service: str) -> str | None:
    """The version a running supersede of `service` will deploy, or None if none runs."""
    handle = client.get_workflow_handle(supersede_id_for(service))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    version = description.typed_search_attributes.get(visibility.DEPLOY_CANARY_VERSION)
    if version:
        return version
    # Started without search attributes (`temporal workflow start`): its input says.
    history = await handle.fetch_history()
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    [data] = await client.data_converter.decode(payloads[:1], [dict])
    try:
        return parse_spec(data).canary.version
    except SpecError:
        return "an invalid spec"


async def refuse_while_superseding(client: Client, service: str, doing: str) -> None:
    """Raise DeploymentAlreadyRunning if a supersede of `service` is under way: between the
    old deployment's end and the new one's start, `deploy-<service>` is briefly free."""
    version = await superseding_version(client, service)
    if version is not None:
        raise DeploymentAlreadyRunning(
            f"a supersede of {service} to {version} is already under way (workflow "
            f"{supersede_id_for(service)}); wait until it has started {version} before "
            f"{doing}"
        )


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
    """The health watcher's latest check, read from its heartbeat (as the Web UI shows it).
    A watcher the workflow has stopped, which has not heard of it yet, is not read."""
    description = await client.get_workflow_handle(workflow_id).describe()
    for pending in description.raw_description.pending_activities:
        details = pending.heartbeat_details.payloads
        stopped = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED
        if pending.activity_type.name == WATCH_HEALTH and details and not stopped:
            [report] = await client.data_converter.decode(details, [CheckReport])
            return report
    return None


async def follow(
    client: Client, workflow_id: str, poll: timedelta = timedelta(milliseconds=250)
) -> AsyncIterator[DeploymentStatus | CheckReport]:
    """Yield each new status (phase, stage, weight, pause, a control or a hook's result
    changed) and each new live check."""
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
            len(status.hooks),
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
