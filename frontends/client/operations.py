"""What an operator can do to a service besides starting a deployment: control the running
one, back up, list and restore its routing, roll back a promoted release, and try a spec
before deploying. Shared by every front end (CLI, chat-ops); the workflows enforce the rules.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from frontends.client.deployments import (
    deployment_handle,
    handle_for,
    query_status,
    refuse_while_superseding,
)
from frontends.client.history import (
    DEPLOYMENT,
    DeploymentRecord,
    ServiceRouting,
    backup_taken_by,
    latest,
    routing_of,
)
from sluicegate import visibility
from sluicegate.contracts import (
    LIST_BACKUPS_WORKFLOW,
    MAX_REASON,
    PREFLIGHT_WORKFLOW,
    RESTORE_RELEASE,
    SNAPSHOT_ROUTING,
    Action,
    BackupEntry,
    BackupList,
    BackupRecord,
    ControlInput,
    DeploymentResult,
    DeploymentStatus,
    ListBackupsInput,
    PreflightInput,
    PreflightReport,
    RestoreInput,
    RestoreResult,
    SnapshotInput,
)
from sluicegate.errors import (
    ControlRefused,
    DeploymentAlreadyRunning,
    DeploymentNotFound,
    NoWorker,
)
from sluicegate.spec import DeploymentSpec, workflow_id_for

OPERATION_TIMEOUT = timedelta(minutes=2)
Result = TypeVar("Result")


def default_reason(action: Literal["abort", "rollback"], origin: str) -> str:
    """What an abort or rollback without a reason records, e.g. "rolled back from Slack"."""
    return f"{'aborted' if action == 'abort' else 'rolled back'} from {origin}"


async def ensure_worker(client: Client, task_queue: str) -> None:
    """Raise NoWorker unless a worker polls `task_queue` (else a request would just wait)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    if not response.pollers:
        raise NoWorker(
            f"no worker polls task queue {task_queue!r} in namespace {client.namespace!r}; "
            "start one with `sluice worker` (same SLUICEGATE_TASK_QUEUE)"
        )


async def current(client: Client, service: str) -> DeploymentStatus | DeploymentRecord:
    """The running deployment's status (from its query), else how the latest change ended."""
    record = await latest(client, service)
    if record.status != "Running" or record.kind != DEPLOYMENT:
        return record
    await ensure_worker(client, record.task_queue)  # else the query would wait for one
    handle = handle_for(client, record.workflow_id, record.run_id)
    return await query_status(handle, timeout=None)


async def control(
    client: Client,
    service: str,
    action: Action,
    request: ControlInput,
    run_id: str | None = None,
) -> DeploymentStatus:
    """Send `action` to the running deployment as an update; its validator may refuse.

    With `run_id`, only that run may receive it (a button on an old chat message must
    never steer a later deployment of the service)."""
    record = await latest(client, service)
    if record.status != "Running":
        raise ControlRefused(
            f"cannot {action}: nothing running for {service}; its latest deployment "
            f"ended {record.outcome or record.status.lower()}"
        )
    if record.kind != DEPLOYMENT:
        raise ControlRefused(f"cannot {action}: {service} is being restored from a backup")
    if run_id is not None and run_id not in (record.run_id, record.first_run_id):
        raise ControlRefused(
            f"cannot {action}: that was for run {run_id} of {service}, which is not running; "
            f"the deployment running now is run {record.run_id}"
        )
    await ensure_worker(client, record.task_queue)
    # Pinned to the run just checked, so a deployment started meanwhile is never steered.
    handle = client.get_workflow_handle(record.workflow_id, run_id=record.run_id)
    try:
        # temporalio's multi-param overload annotates `args: MultiParamSpec.args`, which
        # pyright reads as Unknown; the string-name overload used here is fully typed.
        return await handle.execute_update(action, request, result_type=DeploymentStatus)  # pyright: ignore[reportUnknownMemberType]
    except WorkflowUpdateFailedError as err:
        # The validator's own words, without the exception type ("ValueError: ...").
        cause = err.cause
        why = cause.message if isinstance(cause, FailureError) else str(cause)
        raise ControlRefused(why) from None
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # It ended between the check above and the update (e.g. a rollback that finished).
        raise ControlRefused(
            f"cannot {action}: the deployment of {service} ended meanwhile; "
            f"`sluice status {service}` shows how"
        ) from None


async def service_routing(
    client: Client, service: str, spec: DeploymentSpec | None = None
) -> ServiceRouting:
    """The spec's router and store if given, else those of the service's latest deployment."""
    if spec is None:
        return one_router(await routing_of(client, service))
    if spec.service != service:
        raise ControlRefused(f"the spec is for {spec.service!r}, not {service!r}")
    return one_router(
        ServiceRouting(router=spec.router, backup=spec.backup, source="the spec file")
    )


def one_router(routing: ServiceRouting) -> ServiceRouting:
    """`routing`, if it is one router: backups of a fleet live on each instance's host, and
    backing up or restoring them by hand is not yet something `sluice` does."""
    fleet = routing.router.fleet()
    if len(fleet) > 1:
        names = ", ".join(instance.label() for instance in fleet)
        raise ControlRefused(
            f"{routing.source} names a router fleet ({names}): sluice backup, backups, "
            "restore and rollback after a promotion work on one router; roll a fleet back "
            "by deploying the previous version (docs/RUNBOOK.md)"
        )
    return routing


async def snapshot(
    client: Client, task_queue: str, service: str, spec: DeploymentSpec | None = None
) -> BackupRecord:
    """Back up the service's routing as it is now."""
    routing = await service_routing(client, service, spec)
    request = SnapshotInput(service=service, router=routing.router, backup=routing.backup)
    return await _run(
        client, task_queue, SNAPSHOT_ROUTING, request, BackupRecord, f"backup-{service}"
    )


async def backups(
    client: Client, task_queue: str, service: str, spec: DeploymentSpec | None = None
) -> list[BackupEntry]:
    """The service's backups, newest first, each verified against its sha256."""
    routing = await service_routing(client, service, spec)
    request = ListBackupsInput(service=service, backup=routing.backup)
    listed: BackupList = await _run(
        client, task_queue, LIST_BACKUPS_WORKFLOW, request, BackupList, f"backups-{service}"
    )
    return list(listed.entries)


async def restore(
    client: Client,
    task_queue: str,
    service: str,
    backup_id: str,
    request: ControlInput,
    spec: DeploymentSpec | None = None,
) -> RestoreResult:
    """Restore one verified backup, as a RestoreRelease workflow; waits for it to finish."""
    routing = await service_routing(client, service, spec)
    entries = await backups(client, task_queue, service, spec)
    entry = next((entry for entry in entries if entry.id == backup_id), None)
    if entry is None:
        known = ", ".join(entry.id for entry in entries[:5]) or "none"
        raise DeploymentNotFound(
            f"no backup {backup_id!r} of {service} (newest: {known}); "
            f"see `sluice backups {service}`"
        )
    if not entry.verified:
        raise ControlRefused(f"backup {backup_id} does not verify: {entry.problem}")
    return await _restore(client, task_queue, routing, service, backup_id, entry.record(), request)


async def rollback(
    client: Client, task_queue: str, service: str, request: ControlInput
) -> DeploymentResult | RestoreResult:
    """Abort the running deployment; or, after a promotion, restore the release before it."""
    record = await latest(client, service)
    if record.status == "Running" and record.kind == DEPLOYMENT:
        await control(client, service, "abort", request)
        return await deployment_handle(client, service).result()
    if record.status == "Running":
        raise ControlRefused(f"{service} is being restored from a backup; wait for it to finish")
    if record.kind != DEPLOYMENT or record.outcome != "promoted":
        raise ControlRefused(
            f"nothing to roll back: the latest change to {service} "
            f"({record.kind} {record.run_id}) ended {record.outcome or record.status.lower()}"
        )
    backup = await backup_taken_by(client, record)
    routing = one_router(await routing_of(client, service))
    reason = f"roll back {record.canary_version} (promoted by run {record.run_id})"
    if request.reason:
        reason += f": {request.reason}"
    request = request.model_copy(update={"reason": fitted(reason, MAX_REASON)})
    return await _restore(
        client, task_queue, routing, service, Path(backup.path).name, backup, request
    )


async def preflight(client: Client, task_queue: str, spec: DeploymentSpec) -> PreflightReport:
    """Have the worker try the spec's router, metric source and backup store."""
    timeout = OPERATION_TIMEOUT + spec.analysis.interval
    return await _run(
        client,
        task_queue,
        PREFLIGHT_WORKFLOW,
        PreflightInput(spec=spec),
        PreflightReport,
        f"preflight-{spec.service}",
        timeout,
    )


async def _restore(
    client: Client,
    task_queue: str,
    routing: ServiceRouting,
    service: str,
    backup_id: str,
    backup: BackupRecord,
    request: ControlInput,
) -> RestoreResult:
    await ensure_worker(client, task_queue)
    restore_input = RestoreInput(
        service=service,
        router=routing.router,
        backup_store=routing.backup,
        backup_id=backup_id,
        backup=backup,
        by=request.by,
        reason=request.reason,
    )
    handle = await start_restore(client, task_queue, restore_input)
    return await handle.result()


async def start_restore(
    client: Client, task_queue: str, request: RestoreInput
) -> WorkflowHandle[Any, RestoreResult]:
    """Start RestoreRelease; refused while a deployment, or a supersede, of the service runs."""
    service = request.service
    await refuse_while_superseding(client, service, "restoring a backup")
    try:
        return await client.start_workflow(
            RESTORE_RELEASE,
            request,
            result_type=RestoreResult,
            # The deployment id: a restore never overlaps a deployment of the same service.
            id=workflow_id_for(service),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"{service}: restore backup {request.backup_id}",
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(visibility.DEPLOY_SERVICE, service)]
            ),
        )
    except WorkflowAlreadyStartedError:
        raise DeploymentAlreadyRunning(
            f"a deployment of {service} is running; abort it (`sluice rollback {service}`) "
            "or wait for it before restoring a backup"
        ) from None


async def _run(
    client: Client,
    task_queue: str,
    workflow: str,
    request: BaseModel,
    result_type: type[Result],
    id_prefix: str,
    timeout: timedelta = OPERATION_TIMEOUT,
) -> Result:
    """Run a short operator workflow (by name) on a live worker and return its result."""
    await ensure_worker(client, task_queue)
    return await client.execute_workflow(
        workflow,
        request,
        result_type=result_type,
        id=f"{id_prefix}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        execution_timeout=timeout,
    )


def fitted(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis if it is longer (a control's
    recorded `by` and `reason` have limits; what we add to a person's words must not make
    a valid request invalid)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_data(model: BaseModel) -> Any:
    """A model as plain JSON data for scripts and APIs. Infinite floats (a histogram's last
    bound, a fresh test's evidence) become the strings "Infinity" and "-Infinity", which
    strict JSON encoders accept."""
    return json.loads(model.model_dump_json())
