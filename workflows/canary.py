"""CanaryDeployment: back up, shift traffic stage by stage while watching health, then
promote to 100% or restore the backup. Deterministic orchestration only: activities act.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import (
        CANARY_DEPLOYMENT,
        FINISHED,
        HEALTH_LAPSED,
        HEALTH_REPORT,
        STATUS,
        WATCHING,
        Action,
        CheckReport,
        ControlInput,
        DeploymentResult,
        DeploymentStatus,
        HookResult,
        Outcome,
        Phase,
        PromoteInput,
        Resumption,
        RouterState,
    )
    from sluicegate.describe import plan, short_duration, stage_plan
    from sluicegate.errors import SpecError
    from sluicegate.notifications import Event
    from sluicegate.spec import (
        Deadline,
        DeploymentSpec,
        HookEvent,
        HookSpec,
        Stage,
        parse_spec,
    )
    from workflows import steps
    from workflows.baseline import StableBefore
    from workflows.controls import Controls, control_handlers
    from workflows.courier import Courier, notification
    from workflows.details import Visibility, publish_refused
    from workflows.fleet import Fleet
    from workflows.hooks import Hooks
    from workflows.measures import RollbackCause, count_deadline_passed, count_rollback
    from workflows.restore import root_cause
    from workflows.stage import HandOver, StageHold
    from workflows.steps import Routing
    from workflows.watch import Stop, Watcher

# 0.2: after the stages, the canary is judged at 100% before stable is pointed at it.
GUARD_PATCH = "post-promotion-guard"
GUARD_STAGE = "post-promotion"
# 0.3: promote and abort are notified too (and so kept as the deployment's events), as pause
# and resume always were.
CONTROL_NOTICES_PATCH = "control-notices"

# Typed callers pass a DeploymentSpec; `temporal workflow start --input-file` passes JSON.
# Either way it is validated here, so a bad spec fails the workflow naming every bad field
# instead of failing the workflow task (which Temporal would retry forever).
SpecInput = DeploymentSpec | dict[str, Any]


def _validated(spec: SpecInput) -> tuple[DeploymentSpec | None, SpecError | None]:
    if isinstance(spec, DeploymentSpec):
        return spec, None
    try:
        return parse_spec(spec), None
    except SpecError as err:
        return None, err


@workflow.defn(name=CANARY_DEPLOYMENT)
class CanaryDeployment:
    @workflow.init
    def __init__(self, spec: SpecInput, resumed: Resumption | None = None) -> None:
        self._spec, self._invalid = _validated(spec)
        self._resumed = resumed  # where the previous run continued as new, if it did
        self._phase: Phase = "validating"
        self._stage_index: int | None = None
        self._weight = 0
        self.controls = Controls()
        self._courier = Courier(on_failure=self.publish)
        self.latest_check: CheckReport | None = None
        self._stage: StageHold | None = None  # the current stage's
        self._reason: str | None = None
        self._fleet: Fleet | None = None  # the router instances and their backups
        self._visibility = Visibility()
        self._shifted = False  # a traffic shift began: the deployment may have moved traffic
        self._stable = StableBefore()
        self._guard: Stage | None = None  # the watch at 100% after the stages, once begun
        self._hooks: Hooks | None = None
        self._rollout_began = False  # pre_rollout hooks ran: on_rollback hooks have work
        self._deadline: asyncio.Task[None] | None = None  # the progress deadline's timer
        self._deadline_at: datetime | None = None  # when it passes, until it has

    @workflow.run
    async def run(self, spec: SpecInput, resumed: Resumption | None = None) -> DeploymentResult:
        if self._invalid is not None:
            publish_refused(spec.get("service") if isinstance(spec, dict) else None)
        if resumed is not None:
            self._carry_over(resumed)
        else:
            self.set_phase("validating")  # an invalid spec fails the deployment here
        self._courier.start()
        try:
            result = await self._deploy()
        finally:
            await self._courier.flush()
        return result.model_copy(update={"notification_failures": tuple(self._courier.failures)})

    async def _deploy(self) -> DeploymentResult:
        self._start_progress_deadline()
        if self._resumed is None:
            try:
                self.set_phase("backing_up")
                self._fleet = Fleet(self.spec)
                await self._fleet.back_up()
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                reason = f"backup failed, no traffic moved: {root_cause(err)}"
                self.notify("not_started", reason)
                return self._finish("not_started", reason)
        try:
            if self._resumed is None:
                await self._measure_baseline()
                self.check_abort()
                self.notify(
                    "started",
                    f"deployment started: {plan(self.spec)}",
                    self._stable.lines(self.spec.analysis),
                )
                await self._before_any_user()
            await self._progress()
            await self._promote()
            return await self._after_promotion()
        except HandOver as handover:
            await self._continue_as_new(handover)
        except Stop as stop:
            if stop.unhealthy:
                self._notify_breach(stop)
            return await self._roll_back(stop.reason, stop.evidence, stop.cause)
        except ActivityError as err:
            if is_cancelled_exception(err):
                await self._roll_back("deployment cancelled", None, "cancelled")
                raise
            return await self._roll_back(f"unrecoverable error: {root_cause(err)}", None, "error")
        except asyncio.CancelledError:
            await self._roll_back("deployment cancelled", None, "cancelled")
            raise

    def _start_progress_deadline(self) -> None:
        """The progress deadline's timer (a resumed run's: for what is left of it). Left to
        lapse when the deployment ends first (a pending timer costs nothing)."""
        deadline = self.spec.progress_deadline
        if deadline is None:
            return
        if self._resumed is None:
            self._deadline_at = workflow.now() + deadline.after
            wait = deadline.after
        elif self._deadline_at is not None:
            wait = max(self._deadline_at - workflow.now(), timedelta(seconds=1))
        else:
            return  # it passed in an earlier run, which paged
        self._deadline = asyncio.create_task(self._progress_deadline(deadline, wait))

    async def _progress_deadline(self, deadline: Deadline, wait: timedelta) -> None:
        """Past `progress_deadline`: roll back as an abort by sluicegate would, or page."""
        after = short_duration(deadline.after)
        await workflow.sleep(wait, summary=f"progress deadline {after}")
        self._deadline_at = None
        if self._phase in FINISHED:
            return
        reason = f"progress deadline {after} passed"
        count_deadline_passed("progress", deadline.then)
        if deadline.then == "rollback":
            self.control("abort", ControlInput(by="sluicegate", reason=reason))
        else:
            self.notify("deadline", f"{reason} at {self._weight}%: still running; promote or abort")

    @property
    def spec(self) -> DeploymentSpec:
        """The validated spec; an invalid one fails the workflow (and queries) by name."""
        if self._spec is None:
            raise ApplicationError(str(self._invalid), type="SpecError", non_retryable=True)
        return self._spec

    # -- steps -------------------------------------------------------------------------

    async def _measure_baseline(self) -> None:
        """Watch stable for `analysis.baseline` before any traffic moves (not with
        `baseline: 0`, nor once aborted)."""
        if self.spec.analysis.baseline <= timedelta(0):
            self._stable.missing = "not measured (analysis.baseline is 0)"
            return
        if self.controls.abort is not None:
            return
        self.set_phase("measuring_baseline")
        await self._stable.measure(self.spec, lambda: self.controls.abort is not None)
        self.publish()

    async def _before_any_user(self) -> None:
        """The `pre_rollout` hooks (start the canary fleet, acceptance tests), then the smoke
        checks straight to the canary's endpoints: a failure moves no traffic."""
        hooks = self.spec.hooks.pre_rollout
        self._rollout_began = bool(hooks)
        await self._hooks_pass("pre_rollout", hooks, "before any traffic moved")
        await self._hooks_pass("smoke", self.spec.smoke, "before any traffic moved")
        self.check_abort()

    async def _hooks_pass(
        self, event: HookEvent, hooks: tuple[HookSpec, ...], when: str, stage: str | None = None
    ) -> None:
        """Run `hooks`; the first that fails stops the deployment with its evidence."""
        if not hooks:
            return
        failed = await self._run_hooks().run(event, hooks, self._weight, stage)
        self.publish()
        if failed is not None:
            raise Stop(
                f"{event} {failed.describe()} {when}", self.latest_check, cause="hook_failed"
            )

    def _run_hooks(self) -> Hooks:
        if self._hooks is None:
            self._hooks = Hooks(self.spec)
        return self._hooks

    async def _progress(self) -> None:
        """Run the stages in order (a resumed run: from the stage it holds); raises Stop
        when the deployment must roll back, HandOver when it continues as new."""
        resumed = self._resumed
        first = 0
        if resumed is not None:
            if resumed.stage_index is None:
                return  # it holds the guard, after the stages
            first = resumed.stage_index
        for index, stage in enumerate(self.spec.stages[first:], start=first):
            self.check_abort()
            self._stage_index = index
            carried = resumed if resumed is not None and index == first else None
            self._stage = StageHold(
                self,
                stage,
                max_wait=self.spec.max_wait,
                resumed=carried.hold if carried is not None else None,
                watch_from=carried.watch_from if carried is not None else None,
            )
            self.set_phase("progressing")
            if carried is None:
                await self._hooks_pass(
                    "pre_stage",
                    self.spec.hooks.pre_stage,
                    f"before stage {stage.name}",
                    stage.name,
                )
                self.check_abort()
                await self._shift(stage.weight)
                self.notify(
                    "stage_advanced", f"{self.spec.canary.version}: stage {stage_plan(stage)}"
                )
            await self._stage.hold(self._watcher(stage))
            promote = self.controls.take_promote()
            if promote is not None and promote.full:
                return

    def _watcher(self, stage: Stage) -> Watcher:
        """The health watcher of the stage now held (the guard's too), with its drift
        checks on every router instance."""
        assert self._stage is not None, "a watcher watches the stage held"
        fleet = self._taken()
        return Watcher(
            self.spec,
            stage,
            steps.stage_routing(self.spec, fleet.first_backup, stage.weight),
            self._stable.baseline,
            fleet.watched(steps.weighted(self.spec, stage.weight)),
            hand_over_at=self._stage.hand_over_at(),
            resume_from=self._stage.watch_from,
        )

    async def _promote(self) -> None:
        """All traffic to the canary; then, with the guard on, judge it at 100% while the
        old version stays registered; then make it the stable version."""
        resuming_guard = self._resumed is not None and self._resumed.stage_index is None
        if not resuming_guard:
            self.set_phase("promoting")
        shifts = steps.promotion(self.spec, self._weight)
        watch = self.spec.post_promotion.watch
        if watch > timedelta(0) and workflow.patched(GUARD_PATCH):
            full, repoint = shifts[:-2], shifts[-2:]
            if not resuming_guard:
                for routing, summary in full:
                    await self._apply(routing, summary)
                await self._hooks_pass("smoke", self.spec.smoke, "at 100% (post-deployment)")
            await self._hold_guard(Stage(name=GUARD_STAGE, weight=100, bake=watch))
            self.set_phase("promoting")
            shifts = repoint
        for routing, summary in shifts:
            await self._apply(routing, summary)

    async def _after_promotion(self) -> DeploymentResult:
        """The `post_promotion` hooks (retire the old fleet), now that the guard passed; a
        failing one leaves the release promoted and says so."""
        version = self.spec.canary.version
        reason = "all stages passed; canary promoted to 100%"
        evidence: tuple[str, ...] = ()
        if hooks := self.spec.hooks.post_promotion:
            failed = await self._run_hooks().run("post_promotion", hooks, self._weight)
            if failed is not None:
                evidence = (f"post_promotion {failed.describe()}",)
                reason = f"{reason}; {evidence[0]}"
        self.notify("promoted", f"{version} promoted to 100%", evidence)
        return self._finish("promoted", reason)

    async def _hold_guard(self, guard: Stage) -> None:
        """Judge the new version at 100% against its limits and the old version's baseline
        for `post_promotion.watch`; a breach raises Stop, so the old fleet is put back.
        A promote ends the guard early; pause holds it; abort (`sluice rollback`) rolls back."""
        self.check_abort()
        self._guard = guard
        resumed = self._resumed if self._resumed and self._resumed.stage_index is None else None
        self._stage = StageHold(
            self,
            guard,
            phase="guarding",
            resumed=resumed.hold if resumed is not None else None,
            watch_from=resumed.watch_from if resumed is not None else None,
        )
        self.set_phase("guarding")
        if resumed is None:
            self.notify(
                "guarding",
                f"{self.spec.canary.version} at 100%: guarded for "
                f"{short_duration(guard.bake)}; {self.spec.stable.version} stays registered "
                "until then",
            )
        await self._stage.hold(self._watcher(guard))
        self.controls.take_promote()

    async def _roll_back(
        self, reason: str, evidence: CheckReport | None, cause: RollbackCause
    ) -> DeploymentResult:
        self._reason = reason
        if evidence is not None:
            self.latest_check = evidence
        self.set_phase("rolling_back")
        restored = await self._restore_backup(reason)
        breached_at = evidence.at if cause == "breach" and evidence is not None else None
        count_rollback(cause, breached_at)
        self._weight = restored.canary_weight
        if (self._shifted or self._rollout_began) and (hooks := self.spec.hooks.on_rollback):
            failed = await self._run_hooks().run("on_rollback", hooks, self._weight)
            if failed is not None:
                reason = f"{reason}; on_rollback {failed.describe()}"
                self._reason = reason
        if not self._shifted:
            self.notify("not_started", f"not started, no traffic moved: {reason}")
            return self._finish("not_started", reason)
        self.notify("rolled_back", f"rolled back to 100% {self.spec.stable.version}: {reason}")
        return self._finish("rolled_back", reason)

    async def _restore_backup(self, reason: str) -> RouterState:
        """Restore the backup until it works. Never abandoned, not even when cancelled."""
        told: list[str] = []

        def on_trouble(problem: str | None) -> None:
            if problem is None:
                self.set_phase("rolling_back")
                return
            self._reason = f"{reason}; ROLLBACK FAILING, retrying: {problem}"
            if not told:  # one page; the workflow keeps retrying, the Web UI shows each try
                told.append(problem)
                self.notify("rollback_failing", f"rollback failing, retrying: {problem}")
            self.set_phase("failed")

        state = await self._taken().restore(
            f"restore backup: 100% {self.spec.stable.version}", on_trouble
        )
        self._reason = reason
        return state

    @property
    def _backed_up(self) -> bool:
        return self._fleet is not None and self._fleet.backed_up

    def _taken(self) -> Fleet:
        assert self._fleet is not None and self._fleet.backed_up, "back up before routing"
        return self._fleet

    async def _shift(self, weight: int) -> None:
        self._shifted = True  # from here on it may have moved traffic, even if it fails
        await self._apply(
            steps.weighted(self.spec, weight), f"shift {weight}% → {self.spec.canary.version}"
        )

    async def _apply(self, routing: Routing, summary: str) -> None:
        self._weight = (await self._taken().apply(routing, summary)).canary_weight
        self.publish()

    def check_abort(self) -> None:
        if (abort := self.controls.abort) is not None:
            reason = abort.reason or "no reason given"
            raise Stop(f"aborted by {abort.by}: {reason}", self.latest_check)

    # -- continue-as-new ---------------------------------------------------------------

    async def _continue_as_new(self, handover: HandOver) -> NoReturn:
        """Go on holding the stage in a new run with a fresh history, carrying everything
        the deployment knows. Notifications go out first; a control that comes meanwhile
        is carried over too."""
        await self._courier.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(args=[self.spec, self._resumption(handover)])

    def _resumption(self, handover: HandOver) -> Resumption:
        previous = self._resumed
        return Resumption(
            began_at=previous.began_at if previous else workflow.info().workflow_start_time,
            first_run_id=workflow.info().first_execution_run_id,
            runs=previous.runs + 1 if previous else 1,
            stage_index=None if self._guard is not None else self._stage_index,
            hold=handover.state,
            canary_weight=self._weight,
            backups=self._taken().backups,
            baseline=self._stable.baseline,
            no_baseline=self._stable.missing,
            latest_check=self.latest_check,
            watch_from=handover.watch_from,
            controls=tuple(self.controls.records),
            paused=self.controls.paused,
            pending_promote=self.controls.pending_promote,
            abort=self.controls.abort,
            hooks=self._hook_results(),
            rollout_began=self._rollout_began,
            notification_failures=tuple(self._courier.failures),
            progress_deadline=self._deadline_at,
        )

    def _carry_over(self, resumed: Resumption) -> None:
        """What the previous run knew, as this run's own."""
        if resumed.stage_index is None:
            self._phase = "guarding"
        else:
            self._phase = "awaiting_approval" if resumed.hold.at_gate else "progressing"
        self._stage_index = resumed.stage_index
        self._weight = resumed.canary_weight
        self._shifted = True
        self._fleet = Fleet(self.spec, resumed.backups)
        self._stable.baseline, self._stable.missing = resumed.baseline, resumed.no_baseline
        self.latest_check = resumed.latest_check
        self.controls.carry_over(resumed)
        self._hooks = Hooks(self.spec, resumed.hooks)
        self._rollout_began = resumed.rollout_began
        self._courier.failures = list(resumed.notification_failures)
        self._deadline_at = resumed.progress_deadline

    # -- controls ----------------------------------------------------------------------

    promote_signal, promote_update = control_handlers("promote", PromoteInput)
    abort_signal, abort_update = control_handlers("abort", ControlInput)
    pause_signal, pause_update = control_handlers("pause", ControlInput)
    resume_signal, resume_update = control_handlers("resume", ControlInput)

    def validate(self, action: Action) -> None:
        refusal = self.controls.refusal(action, self._phase)
        if refusal is not None:
            raise ValueError(f"cannot {action}: {refusal}")

    def control(self, action: Action, request: ControlInput) -> None:
        """A person's control, by signal or update; one that makes no sense now is ignored."""
        record = self.controls.accept(action, request, self._phase, workflow.now())
        if record is None:
            return
        if action in ("pause", "resume"):
            self.notify(
                "paused" if action == "pause" else "resumed",
                ("paused" if action == "pause" else "resumed")
                + (f": {request.reason}" if request.reason else ""),
                by=request.by,
            )
        elif workflow.patched(CONTROL_NOTICES_PATCH):
            full = " to 100%" if isinstance(request, PromoteInput) and request.full else ""
            reason = f": {request.reason}" if request.reason else ""
            event: Event = "promote_requested" if action == "promote" else "abort_requested"
            self.notify(event, f"{action}{full} requested{reason}", by=request.by)
        self.publish()

    @workflow.signal(name=HEALTH_REPORT)
    def health_report(self, report: CheckReport) -> None:
        """A watcher's judged health changed: shown in the status and Web UI details, and a
        stage moves on by itself only once its latest judged check was healthy."""
        stage = self._current_stage()
        if self._phase in WATCHING and stage is not None and report.stage == stage.name:
            self.latest_check = report
            if self._stage is not None:
                self._stage.note(report)
            self.publish()

    @workflow.update(name=HEALTH_LAPSED)
    def health_lapsed(self, report: CheckReport) -> DeploymentStatus:
        """The watcher had no data past the limit and the spec says pause for a person.

        Evidence from before the lapse no longer counts: after a resume the stage moves on
        only once a new check is healthy.
        """
        lapsed = self.spec.analysis.inconclusive_checks_tolerated + 1
        record = self.controls.pause_for_a_person(
            f"no data for {lapsed} checks in a row: {report.describe()}", workflow.now()
        )
        self.latest_check = report
        if self._stage is not None:
            self._stage.lapsed(report)
        self.notify(
            "paused",
            f"paused for a person: {record.reason}; resume, promote or abort",
            by=record.by,
        )
        self.publish()
        return self.status()

    @health_lapsed.validator
    def _validate_health_lapsed(self, report: CheckReport) -> None:
        self.validate("pause")
        stage = self._current_stage()
        if stage is None or report.stage != stage.name:
            raise ValueError(f"cannot pause: the report is from stage {report.stage!r}")

    # -- visibility --------------------------------------------------------------------

    @workflow.query(name=STATUS)
    def status(self) -> DeploymentStatus:
        stage = self._current_stage()
        return DeploymentStatus(
            service=self.spec.service,
            stable_version=self.spec.stable.version,
            canary_version=self.spec.canary.version,
            phase=self._phase,
            stage=stage.name if stage else None,
            stage_index=self._stage_index,
            stages=len(self.spec.stages),
            canary_weight=self._weight,
            paused=self.controls.paused,
            pending_promote=self.controls.pending_promote,
            latest_check=self.latest_check,
            reason=self._reason,
            controls=tuple(self.controls.records),
            bake=self._stage.bake.clock if self._stage else None,
            notification_failures=tuple(self._courier.failures),
            baseline=self._stable.baseline,
            no_baseline=self._stable.missing,
            baseline_lines=self._stable.lines(self.spec.analysis),
            hooks=self._hook_results(),
        )

    def notify(
        self, event: Event, summary: str, evidence: tuple[str, ...] = (), by: str | None = None
    ) -> None:
        """Log it, and hand the courier a notification."""
        workflow.logger.info("%s: %s", event, summary)  # not repeated on replay
        stage = self._current_stage()
        name = stage.name if stage else None
        self._courier.send(
            notification(self.spec, event, summary, self._weight, name, evidence, by)
        )

    def _notify_breach(self, stop: Stop) -> None:
        stage = self._current_stage()
        where = f"stage {stage.name} " if stage else ""
        evidence = stop.evidence.verdict.lines() if stop.evidence else (stop.reason,)
        self.notify("breach", f"unhealthy at {where}{self._weight}%: rolling back", evidence)

    def _current_stage(self) -> Stage | None:
        if self._guard is not None:
            return self._guard
        return self.spec.stages[self._stage_index] if self._stage_index is not None else None

    def set_phase(self, phase: Phase) -> None:
        self._phase = phase
        self.publish()

    def _finish(self, outcome: Outcome, reason: str) -> DeploymentResult:
        self._reason = reason
        self._phase = outcome
        self.publish(outcome)
        return DeploymentResult(
            service=self.spec.service,
            canary_version=self.spec.canary.version,
            outcome=outcome,
            reason=reason,
            canary_weight=self._weight if self._backed_up else None,
            evidence=self.latest_check,
            backup_path=self._taken().first_backup.path if self._backed_up else None,
            controls=tuple(self.controls.records),
            hooks=self._hook_results(),
        )

    def _hook_results(self) -> tuple[HookResult, ...]:
        return tuple(self._hooks.results) if self._hooks is not None else ()

    def publish(self, outcome: Outcome | None = None) -> None:
        self._visibility.publish(self.spec, self.status(), outcome)
