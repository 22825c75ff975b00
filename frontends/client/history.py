"""Past and running deployments, as Temporal visibility and each workflow's history tell them.

Works for deployments started any way (sluice, `temporal workflow start`, chat-ops): the
versions come from the workflow's input, who started it from the start event's identity,
the outcome and the controls from its result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from sluicegate import visibility
from sluicegate.contracts import (
    BACKUP,
    BackupRecord,
    ControlRecord,
    DeploymentResult,
    RestoreInput,
    RestoreResult,
    Resumption,
)
from sluicegate.errors import DeploymentNotFound, InvalidArgument, SluicegateError, SpecError
from sluicegate.spec import (
    BackupSpec,
    DeploymentSpec,
    RouterSpec,
    parse_spec,
    service_name_problem,
    workflow_id_for,
)

DEPLOYMENT = "CanaryDeployment"
RESTORE = "RestoreRelease"


class DeploymentRecord(BaseModel):
    """One deployment (or restore) of a service, as `sluice status` and `history` show it."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    run_id: str
    first_run_id: str = ""  # the deployment's first run, when it continued as new since
    kind: str
    task_queue: str
    service: str
    stable_version: str | None
    canary_version: str | None
    status: str
    phase: str | None
    canary_weight: int | None
    outcome: str | None
    reason: str | None
    started_at: datetime
    closed_at: datetime | None
    started_by: str | None
    controls: tuple[ControlRecord, ...] = ()

    @property
    def duration(self) -> timedelta | None:
        return self.closed_at - self.started_at if self.closed_at else None


class ServiceRouting(BaseModel):
    """Where a service's router and backup store are, as its latest deployment says."""

    model_config = ConfigDict(frozen=True)

    router: RouterSpec
    backup: BackupSpec
    source: str


def checked_service(name: str) -> str:
    """`name` if it is a valid service name, else an InvalidArgument naming SERVICE."""
    if problem := service_name_problem(name):
        raise InvalidArgument(f"SERVICE: {problem}")
    return name


async def list_deployments(
    client: Client, service: str | None = None, *, running: bool = False, limit: int = 20
) -> list[DeploymentRecord]:
    """Deployments and restores, newest first, each read from its own history."""
    clauses = [f'WorkflowType IN ("{DEPLOYMENT}", "{RESTORE}")']
    if service is not None:
        name = checked_service(service)
        # A run whose spec was refused before naming a valid service still has its id.
        by_id = f'WorkflowId = "{workflow_id_for(name)}"'
        clauses.append(f'({visibility.DEPLOY_SERVICE.name} = "{name}" OR {by_id})')
    if running:
        clauses.append('ExecutionStatus = "Running"')
    else:  # a deployment that continued as new is listed once, as its latest run
        clauses.append('ExecutionStatus != "ContinuedAsNew"')
    query = " AND ".join(clauses)
    return [
        await _record(client, execution)
        async for execution in client.list_workflows(query, limit=limit)
    ]


async def _record(client: Client, execution: WorkflowExecution) -> DeploymentRecord:
    history = await client.get_workflow_handle(
        execution.id, run_id=execution.run_id
    ).fetch_history()
    events = history.events
    started = events[0].workflow_execution_started_event_attributes
    attributes = execution.typed_search_attributes
    fields: dict[str, Any] = {
        "workflow_id": execution.id,
        "run_id": execution.run_id,
        "first_run_id": execution.raw_info.first_run_id or execution.run_id,
        "kind": execution.workflow_type,
        "task_queue": execution.task_queue,
        "service": attributes.get(visibility.DEPLOY_SERVICE) or _service_of(execution.id),
        "stable_version": None,
        "canary_version": attributes.get(visibility.DEPLOY_CANARY_VERSION),
        "status": execution.status.name.title().replace("_", "") if execution.status else "?",
        "phase": attributes.get(visibility.DEPLOY_PHASE),
        "canary_weight": attributes.get(visibility.DEPLOY_CANARY_WEIGHT),
        "outcome": attributes.get(visibility.DEPLOY_OUTCOME),
        "reason": None,
        "started_at": execution.start_time,
        "closed_at": execution.close_time,
        # A deployment a supersede started is its child: no identity, but a parent.
        "started_by": started.identity or started.parent_workflow_execution.workflow_id or None,
    }
    fields.update(await _from_input(client, execution.workflow_type, started.input.payloads))
    fields.update(await _from_end(client, execution.workflow_type, events[-1]))
    return DeploymentRecord(**fields)


async def _from_input(client: Client, kind: str, payloads: Any) -> dict[str, Any]:
    if not payloads:
        return {}
    if kind == RESTORE:
        [request] = await client.data_converter.decode(payloads, [RestoreInput])
        return {"service": request.service, "reason": request.reason}
    data, resumed = await deployment_input(client, payloads)
    began: dict[str, Any] = {}
    if resumed is not None:
        began = {"started_at": resumed.began_at, "first_run_id": resumed.first_run_id}
    try:
        spec = parse_spec(data)
    except SpecError:  # a refused spec: what it says, where that is plain
        return {
            "reason": "invalid spec",
            "stable_version": _raw_version(data, "stable"),
            "canary_version": _raw_version(data, "canary"),
        }
    return {
        "service": spec.service,
        "stable_version": spec.stable.version,
        "canary_version": spec.canary.version,
        **began,
    }


async def deployment_input(client: Client, payloads: Any) -> tuple[Any, Resumption | None]:
    """A CanaryDeployment run's spec (as the JSON it was given) and, for a run the
    deployment continued as new into, what the previous run carried over."""
    given = list(payloads)
    [data] = await client.data_converter.decode(given[:1], [dict])
    if len(given) < 2:
        return data, None
    [resumed] = await client.data_converter.decode(given[1:2], [Resumption])
    return data, resumed


def _service_of(workflow_id: str) -> str:
    """The service a deployment's workflow id names (`deploy-checkout`), else `?`."""
    name = workflow_id.removeprefix(workflow_id_for(""))
    return name if name != workflow_id and service_name_problem(name) is None else "?"


def _raw_version(data: object, arm: str) -> str | None:
    version = _member(_member(data, arm), "version")
    return version if isinstance(version, str) else None


def _member(data: object, key: str) -> object:
    """`data[key]` when `data` is a JSON object, else None."""
    if not isinstance(data, dict):
        return None
    # The payload decodes as Any; isinstance sees a dict, and a JSON object's keys are str.
    return cast(dict[str, object], data).get(key)


async def _from_end(client: Client, kind: str, event: HistoryEvent) -> dict[str, Any]:
    """Outcome, reason and controls from the closing event, if the workflow has closed."""
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        payloads = event.workflow_execution_completed_event_attributes.result.payloads
        if kind == RESTORE:
            [restored] = await client.data_converter.decode(payloads, [RestoreResult])
            why = f": {restored.reason}" if restored.reason else ""
            reason = f"restored backup {restored.backup_id} for {restored.by}{why}"
            return {"outcome": "restored", "reason": reason}
        [result] = await client.data_converter.decode(payloads, [DeploymentResult])
        return {"outcome": result.outcome, "reason": result.reason, "controls": result.controls}
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = event.workflow_execution_failed_event_attributes.failure
        return {"outcome": "failed", "reason": failure.message}
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        reason = event.workflow_execution_terminated_event_attributes.reason
        return {"outcome": "terminated", "reason": reason or "terminated"}
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        return {"outcome": "cancelled"}
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return {"outcome": "timed_out"}
    return {}


async def latest(client: Client, service: str) -> DeploymentRecord:
    """The service's latest deployment or restore (the one holding its workflow id)."""
    handle = client.get_workflow_handle(workflow_id_for(checked_service(service)))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise DeploymentNotFound(
                f"no deployment of {service!r} found (workflow {handle.id}); "
                "`sluice history` lists the services that have deployments"
            ) from None
        raise
    return await _record(client, description)


async def routing_of(client: Client, service: str) -> ServiceRouting:
    """The router and backup store the service's latest deployment or restore used."""
    record = await latest(client, service)
    history = await client.get_workflow_handle(
        record.workflow_id, run_id=record.run_id
    ).fetch_history()
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    source = f"{record.kind} {record.workflow_id} (run {record.run_id})"
    if record.kind == RESTORE:
        [request] = await client.data_converter.decode(payloads, [RestoreInput])
        return ServiceRouting(router=request.router, backup=request.backup_store, source=source)
    data, _ = await deployment_input(client, payloads)
    spec: DeploymentSpec = parse_spec(data)
    return ServiceRouting(router=spec.router, backup=spec.backup, source=source)


async def backup_taken_by(client: Client, record: DeploymentRecord) -> BackupRecord:
    """The backup a deployment took before moving traffic, as recorded in its history."""
    history = await client.get_workflow_handle(
        record.workflow_id, run_id=record.run_id
    ).fetch_history()
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    _, resumed = await deployment_input(client, payloads)
    if resumed is not None:  # taken by the deployment's first run, and carried over
        return resumed.backups[0]
    scheduled = {
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == BACKUP
    }
    for event in history.events:
        completed = event.activity_task_completed_event_attributes
        if (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and completed.scheduled_event_id in scheduled
        ):
            [backup] = await client.data_converter.decode(completed.result.payloads, [BackupRecord])
            return backup
    raise SluicegateError(f"{record.workflow_id} (run {record.run_id}) recorded no backup")
