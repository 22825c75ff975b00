"""SupersedeDeployment: replace a service's running deployment with a new one.

It aborts the run holding `deploy-<service>` through that deployment's own abort signal
(reason `superseded by <version>`), waits until the run has closed (its rollback restored
and verified the backup), then starts the new `CanaryDeployment` as a child on the same id
that outlives it (ParentClosePolicy.ABANDON), and returns once it has started. With
nothing running it just starts the new one. Its own id, `supersede-<service>`, keeps it to
one supersede per service at a time. CanaryDeployment itself does not change.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from sluicegate import visibility
    from sluicegate.contracts import (
        AWAIT_DEPLOYMENT,
        CANARY_DEPLOYMENT,
        FIND_DEPLOYMENT,
        SUPERSEDE_DEPLOYMENT,
        ControlInput,
        DeploymentResult,
        DeploymentRun,
        EndedDeployment,
        FindDeploymentInput,
        FoundDeployment,
        SupersedeInput,
        SupersedeResult,
        superseded_reason,
    )
    from sluicegate.describe import plan
    from sluicegate.errors import SpecError
    from sluicegate.spec import DeploymentSpec, parse_spec
    from workflows.details import upsert_search_attributes
    from workflows.retries import AWAIT_RUN_HEARTBEAT, AWAIT_RUN_RETRIES, QUICK_RETRIES

# As CanaryDeployment takes it: typed, or JSON from `temporal workflow start --input-file`
# (a dict when it does not validate). The request is optional: without it, by "unknown".
SpecInput = DeploymentSpec | dict[str, Any]
RequestInput = SupersedeInput | dict[str, Any] | None
SupersedePhase = Literal["validating", "finding", "aborting", "waiting", "starting", "started"]
ABORT = "abort"  # CanaryDeployment's abort signal (workflows/controls.py)


def _validated(
    spec: SpecInput, request: RequestInput
) -> tuple[DeploymentSpec | None, SupersedeInput, str | None]:
    """The spec and request, or why not: every bad field named."""
    problems: list[str] = []
    checked: DeploymentSpec | None = None
    if isinstance(spec, DeploymentSpec):
        checked = spec
    else:
        try:
            checked = parse_spec(spec)
        except SpecError as err:
            problems.append(str(err))
    asked = SupersedeInput()
    if isinstance(request, SupersedeInput):
        asked = request
    elif request is not None:
        try:
            asked = SupersedeInput.model_validate(request)
        except ValidationError as err:
            fields = [
                f"  - {'.'.join(str(part) for part in e['loc']) or 'request'}: {e['msg']}"
                for e in err.errors()
            ]
            problems.append("invalid supersede request:\n" + "\n".join(fields))
    return checked, asked, "\n".join(problems) or None


@workflow.defn(name=SUPERSEDE_DEPLOYMENT)
class SupersedeDeployment:
    @workflow.init
    def __init__(self, spec: SpecInput, request: RequestInput = None) -> None:
        self._spec, self._request, self._invalid = _validated(spec, request)
        self._phase: SupersedePhase = "validating"
        self._running: DeploymentRun | None = None
        self._ended: EndedDeployment | None = None
        self._new_run: str | None = None

    @workflow.run
    async def run(self, spec: SpecInput, request: RequestInput = None) -> SupersedeResult:
        if self._spec is None or self._invalid is not None:
            # Failing the workflow, not its task (which Temporal would retry forever).
            raise ApplicationError(str(self._invalid), type="SpecError", non_retryable=True)
        new = self._spec
        self._set_phase("finding")
        running = await self._find(new)
        abort_sent = False
        while running is not None:
            self._running = running
            if running.kind == CANARY_DEPLOYMENT:
                abort_sent = await self._abort(running, new) or abort_sent
            self._set_phase("waiting")
            self._ended = await workflow.execute_activity(
                AWAIT_DEPLOYMENT,
                running,
                result_type=EndedDeployment,
                start_to_close_timeout=timedelta(days=1),
                heartbeat_timeout=AWAIT_RUN_HEARTBEAT,
                retry_policy=AWAIT_RUN_RETRIES,
                summary=f"wait until {running.kind} run {running.run_id} has closed",
            )
            # A deployment that continued as new meanwhile goes on in its next run: that
            # one is aborted and waited for in turn.
            running = await self._find(new) if self._ended.status == "continued" else None
        self._set_phase("starting")
        self._new_run = await self._start(new)
        self._set_phase("started")
        return SupersedeResult(
            service=new.service,
            canary_version=new.canary.version,
            superseded=self._ended,
            abort_sent=abort_sent,
            run_id=self._new_run,
            by=self._request.by,
        )

    async def _find(self, new: DeploymentSpec) -> DeploymentRun | None:
        found = await workflow.execute_activity(
            FIND_DEPLOYMENT,
            FindDeploymentInput(service=new.service),
            result_type=FoundDeployment,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=QUICK_RETRIES,
            summary=f"find what runs as {new.workflow_id}",
        )
        return found.running

    async def _abort(self, running: DeploymentRun, new: DeploymentSpec) -> bool:
        """Send that very run the abort signal; False if it had closed meanwhile. A run that
        is promoting or rolling back ignores it (and logs why): it is waited for all the same."""
        self._set_phase("aborting")
        abort = ControlInput(
            by=self._request.by,
            reason=superseded_reason(new.canary.version, self._request.reason),
        )
        handle = workflow.get_external_workflow_handle(running.workflow_id, run_id=running.run_id)
        try:
            await handle.signal(ABORT, abort)
        except FailureError as err:  # it closed between finding it and the signal
            workflow.logger.info("run %s was not aborted: %s", running.run_id, err)
            return False
        return True

    async def _start(self, new: DeploymentSpec) -> str:
        try:
            child = await workflow.start_child_workflow(
                CANARY_DEPLOYMENT,
                new,
                id=new.workflow_id,
                result_type=DeploymentResult,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"{new.service}: {new.stable.version} → {new.canary.version}",
                static_details=plan(new),
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(visibility.DEPLOY_SERVICE, new.service),
                        SearchAttributePair(visibility.DEPLOY_CANARY_VERSION, new.canary.version),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            raise ApplicationError(
                f"another deployment or restore of {new.service} started on {new.workflow_id} "
                f"while this supersede waited; {new.canary.version} was not started: "
                "supersede again to replace that one",
                type="DeploymentAlreadyRunning",
                non_retryable=True,
            ) from None
        run_id = child.first_execution_run_id
        assert run_id is not None, "a started child has a run id"
        return run_id

    def _set_phase(self, phase: SupersedePhase) -> None:
        self._phase = phase
        new = self._spec
        assert new is not None
        upsert_search_attributes(
            [
                visibility.DEPLOY_SERVICE.value_set(new.service),
                visibility.DEPLOY_PHASE.value_set(f"supersede_{phase}"),
                visibility.DEPLOY_CANARY_VERSION.value_set(new.canary.version),
            ]
        )
        lines = [
            f"**{new.service}**: supersede with {new.canary.version} · phase **{phase}**",
            "",
            f"Asked by {self._request.by}: {self._request.reason or 'no reason given'}",
        ]
        if (running := self._running) is not None:
            version = f" ({running.canary_version})" if running.canary_version else ""
            lines.append(f"Superseding {running.kind} run `{running.run_id}`{version}")
        if (ended := self._ended) is not None:
            lines.append(f"It ended {ended.outcome or ended.status}: {ended.reason or '-'}")
        if self._new_run is not None:
            lines.append(f"Started {new.workflow_id} run `{self._new_run}`")
        workflow.set_current_details("\n".join(lines))
