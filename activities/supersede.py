"""What SupersedeDeployment asks of Temporal itself: which run holds a service's deployment
id, and waiting until that run has closed. A workflow can signal another, but not await
its result; these activities use the worker's own Temporal client for that.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import (
    WorkflowContinuedAsNewError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import temporal_errors
from activities.heartbeats import heartbeating
from sluicegate import visibility
from sluicegate.contracts import (
    AWAIT_DEPLOYMENT,
    CANARY_DEPLOYMENT,
    FIND_DEPLOYMENT,
    RESTORE_RELEASE,
    DeploymentResult,
    DeploymentRun,
    EndedDeployment,
    FindDeploymentInput,
    FoundDeployment,
    RestoreResult,
)
from sluicegate.spec import workflow_id_for

_STATUS: dict[WorkflowExecutionStatus, Any] = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued",
}


@activity.defn(name=FIND_DEPLOYMENT)
@temporal_errors
async def find_deployment(request: FindDeploymentInput) -> FoundDeployment:
    """The run holding `deploy-<service>` if one is running."""
    handle = activity.client().get_workflow_handle(workflow_id_for(request.service))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return FoundDeployment(running=None)  # never deployed
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return FoundDeployment(running=None)
    run = DeploymentRun(
        workflow_id=description.id,
        run_id=description.run_id,
        kind=description.workflow_type,
        canary_version=description.typed_search_attributes.get(visibility.DEPLOY_CANARY_VERSION),
    )
    return FoundDeployment(running=run)


@activity.defn(name=AWAIT_DEPLOYMENT)
@temporal_errors
@heartbeating
async def await_deployment(run: DeploymentRun) -> EndedDeployment:
    """Wait until `run` (that very run) has closed, heartbeating, and say how it closed."""
    client = activity.client()
    fields: dict[str, Any] = {
        "workflow_id": run.workflow_id,
        "run_id": run.run_id,
        "kind": run.kind,
    }
    try:
        if run.kind == CANARY_DEPLOYMENT:
            deployed = await client.get_workflow_handle(
                run.workflow_id, run_id=run.run_id, result_type=DeploymentResult
            ).result(follow_runs=False)
            return EndedDeployment(
                **fields, status="completed", outcome=deployed.outcome, reason=deployed.reason
            )
        if run.kind == RESTORE_RELEASE:
            restored = await client.get_workflow_handle(
                run.workflow_id, run_id=run.run_id, result_type=RestoreResult
            ).result(follow_runs=False)
            reason = f"restored backup {restored.backup_id} for {restored.by}"
            return EndedDeployment(**fields, status="completed", outcome="restored", reason=reason)
        await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).result(
            follow_runs=False
        )
        return EndedDeployment(**fields, status="completed")
    except (WorkflowFailureError, WorkflowContinuedAsNewError) as err:
        description = await client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id
        ).describe()
        cause = err.cause if isinstance(err, WorkflowFailureError) else err
        status = description.status
        closed = _STATUS.get(status, "failed") if status is not None else "failed"
        return EndedDeployment(**fields, status=closed, reason=str(cause) or None)


SUPERSEDE_ACTIVITIES = [find_deployment, await_deployment]
