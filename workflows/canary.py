"""CanaryDeployment: back up, shift traffic stage by stage while watching health, then
promote to 100% or restore the backup. Deterministic orchestration only: activities act.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from sluicegate import visibility
    from sluicegate.analysis.baseline import Baseline
    from sluicegate.contracts import (
        BACKUP,
        FINISHED,
        HEALTH_LAPSED,
        HEALTH_REPORT,
        MEASURE_BASELINE,
        NOTIFY,
        SET_TRAFFIC,
        WATCH_HEALTH,
        WATCHING,
        Action,
        BackupInput,
        BackupRecord,
        BakeClock,
        BaselineInput,
        CheckReport,
        ControlInput,
        ControlRecord,
        DeliveryReport,
        DeploymentResult,
        DeploymentStatus,
        NotifyInput,
        Outcome,
        Phase,
        PromoteInput,
        RouterState,
        SetTrafficInput,
        WatchHealthInput,
        WatchHealthResult,
        heartbeat_timeout,
    )
    from sluicegate.describe import short_duration, span
    from sluicegate.errors import SpecError
    from sluicegate.notifications import Event, Notification, severity_of
    from sluicegate.spec import DeploymentSpec, Stage, parse_spec, service_name_problem
    from workflows.details import render_details
    from workflows.restore import restore_until_done, root_cause
    from workflows.retries import NOTIFY_RETRIES, QUICK_HEARTBEAT, QUICK_RETRIES, WATCH_RETRIES

# Typed callers pass a DeploymentSpec; `temporal workflow start --input-file` passes JSON.
# Either way it is validated here, so a bad spec fails the workflow naming every bad field
# instead of failing the workflow task (which Temporal would retry forever).
SpecInput = DeploymentSpec | dict[str, Any]
# Deployments started before notifications existed replay without them.
NOTIFICATIONS_PATCH = "notifications"
# Bake timers are left to lapse instead of being cancelled when a stage is interrupted.
LAPSING_TIMERS_PATCH = "bake-timers-lapse"
# A cancelled traffic shift is waited for before the rollback starts, so a shift still in
# flight cannot land after the restore (before this patch the rollback started at once).
SHIFT_CANCEL_PATCH = "shift-cancel-waits"
# A watcher that times out while being stopped (its worker died) counts as stopped.
WATCHER_LOST_PATCH = "watcher-lost-while-stopping"
# Stable is watched for `analysis.baseline` before any traffic moves; the limits stable
# already breaches are not held against the canary (the judge does that, given the
# baseline); the started notification comes after it, with stable's numbers.
BASELINE_PATCH = "stable-baseline"
# Time a stage's watcher reports it was not watching (its worker died) is added to the
# bake, so a stage is watched for its whole bake.
BAKE_WATCHED_PATCH = "bake-watched"
# A refused spec still names its service (and the outcome `failed`) in the search
# attributes, so `sluice history SERVICE` lists it.
REFUSED_VISIBLE_PATCH = "refused-spec-visible"
# A deployment that ends before its first traffic shift began ends `not_started`, not
# `rolled_back` (before this patch: rolled_back, also for a refused backup).
NOT_STARTED_PATCH = "not-started-outcome"
# How long a finished deployment waits for its last notifications before it ends anyway.
NOTIFICATION_GRACE = timedelta(minutes=1)


def _validated(spec: SpecInput) -> tuple[DeploymentSpec | None, SpecError | None]:
    if isinstance(spec, DeploymentSpec):
        return spec, None
    try:
        return parse_spec(spec), None
    except SpecError as err:
        return None, err


def _publish_refused(spec: SpecInput) -> None:
    """What a refused spec can say for itself: its service, if it names a valid one."""
    updates = [visibility.DEPLOY_OUTCOME.value_set("failed")]
    service = spec.get("service") if isinstance(spec, dict) else None
    if isinstance(service, str) and service_name_problem(service) is None:
        updates.append(visibility.DEPLOY_SERVICE.value_set(service))
    workflow.upsert_search_attributes(updates)


class _Stop(Exception):
    """Leave the stage loop and roll back, with the reason and the evidence."""

    def __init__(
        self, reason: str, evidence: CheckReport | None = None, unhealthy: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.evidence = evidence
        self.unhealthy = unhealthy  # the canary's health, not a person, stopped it


@workflow.defn(name="CanaryDeployment")
class CanaryDeployment:
    @workflow.init
    def __init__(self, spec: SpecInput) -> None:
        self._spec, self._invalid = _validated(spec)
        self._phase: Phase = "validating"
        self._stage_index: int | None = None
        self._weight = 0
        self._paused = False
        self._pending_promote: ControlRecord | None = None
        self._abort: ControlRecord | None = None
        self._latest_check: CheckReport | None = None
        self._stage_health: str | None = None  # latest judged verdict reported this stage
        self._reason: str | None = None
        self._controls: list[ControlRecord] = []
        self._backup: BackupRecord | None = None
        self._published: tuple[Phase, int, Outcome | None] | None = None
        self._bake_clock: BakeClock | None = None
        self._notifying = False
        self._outbox: list[Notification] = []
        self._notification_failures: list[str] = []
        self._courier: asyncio.Task[None] | None = None
        self._delivering = False
        self._stop_delivering = False
        self._lapsing_timers = False
        self._shift_cancel_waits = False
        self._measures_baseline = False
        self._bake_watched = False
        self._tells_not_started = False
        self._shifted = False
        self._baseline: Baseline | None = None
        self._no_baseline: str | None = None
        # The current stage's bake: time its watcher reported unwatched, and how much of
        # that has been added to the bake; the bake clock's base (left, and when the
        # running timer ends; None while paused).
        self._unwatched = timedelta(0)
        self._made_up = timedelta(0)
        self._bake_base: tuple[timedelta, datetime | None] | None = None

    @workflow.run
    async def run(self, spec: SpecInput) -> DeploymentResult:
        if self._invalid is not None and workflow.patched(REFUSED_VISIBLE_PATCH):
            _publish_refused(spec)
        self._set_phase("validating")  # an invalid spec fails the deployment here
        if workflow.patched(NOTIFICATIONS_PATCH):
            self._notifying = True
            self._courier = asyncio.create_task(self._deliver_notifications())
        self._lapsing_timers = workflow.patched(LAPSING_TIMERS_PATCH)
        self._shift_cancel_waits = workflow.patched(SHIFT_CANCEL_PATCH)
        self._measures_baseline = workflow.patched(BASELINE_PATCH)
        self._bake_watched = workflow.patched(BAKE_WATCHED_PATCH)
        self._tells_not_started = workflow.patched(NOT_STARTED_PATCH)
        try:
            result = await self._deploy()
        finally:
            await self._flush_notifications()
        return result.model_copy(
            update={"notification_failures": tuple(self._notification_failures)}
        )

    async def _deploy(self) -> DeploymentResult:
        try:
            self._backup = await self._take_backup()
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            reason = f"backup failed, no traffic moved: {root_cause(err)}"
            outcome: Outcome = "not_started" if self._tells_not_started else "rolled_back"
            self._notify(outcome, reason)
            return self._finish(outcome, reason)
        if not self._measures_baseline:  # deployments started before the patch
            self._notify("started", f"deployment started: {self._plan()}")
        try:
            if self._measures_baseline:
                await self._measure_baseline()
                self._check_abort()
                self._notify(
                    "started", f"deployment started: {self._plan()}", self._baseline_lines()
                )
            await self._progress()
            await self._promote()
            self._notify("promoted", f"{self.spec.canary.version} promoted to 100%")
            return self._finish("promoted", "all stages passed; canary promoted to 100%")
        except _Stop as stop:
            if stop.unhealthy:
                self._notify_breach(stop)
            return await self._roll_back(stop.reason, stop.evidence)
        except ActivityError as err:
            if is_cancelled_exception(err):
                await self._roll_back("deployment cancelled", None)
                raise
            return await self._roll_back(f"unrecoverable error: {root_cause(err)}", None)
        except asyncio.CancelledError:
            await self._roll_back("deployment cancelled", None)
            raise

    @property
    def spec(self) -> DeploymentSpec:
        """The validated spec; an invalid one fails the workflow (and queries) by name."""
        if self._spec is None:
            raise ApplicationError(str(self._invalid), type="SpecError", non_retryable=True)
        return self._spec

    # -- steps -------------------------------------------------------------------------

    async def _take_backup(self) -> BackupRecord:
        self._set_phase("backing_up")
        return await workflow.execute_activity(
            BACKUP,
            BackupInput(
                service=self.spec.service,
                deployment_id=workflow.info().run_id,
                router=self.spec.router,
                backup=self.spec.backup,
                expected_stable=self.spec.stable.address,
            ),
            result_type=BackupRecord,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
            summary=f"back up {self.spec.router.type} routing of {self.spec.service}",
        )

    async def _measure_baseline(self) -> None:
        """Watch stable for `analysis.baseline` before any traffic moves.

        Without a baseline (`baseline: 0`, or the activity failed) the deployment goes on
        with the limits held as written. An abort stops the measuring at once (the
        rollback follows); a cancellation stops it and is raised for the rollback.
        """
        length = self.spec.analysis.baseline
        if length <= timedelta(0):
            self._no_baseline = "not measured (analysis.baseline is 0)"
            return
        if self._abort is not None:
            return
        self._set_phase("measuring_baseline")
        measuring = workflow.start_activity(
            MEASURE_BASELINE,
            BaselineInput(
                service=self.spec.service,
                analysis=self.spec.analysis,
                stable_version=self.spec.stable.version,
                canary_version=self.spec.canary.version,
            ),
            result_type=Baseline,
            start_to_close_timeout=length + timedelta(seconds=60),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"watch stable {short_duration(length)} before any traffic",
        )
        try:
            await workflow.wait_condition(lambda: measuring.done() or self._abort is not None)
        finally:
            if not measuring.done():  # aborted, or the deployment was cancelled
                measuring.cancel()
                await workflow.wait([measuring])
        if measuring.cancelled():
            return
        error = measuring.exception()
        if error is None:
            self._baseline = measuring.result()
        elif is_cancelled_exception(error):
            if self._abort is None:  # not stopped for an abort: a cancellation, roll back
                raise error
        else:
            self._no_baseline = f"could not be measured ({root_cause(error)})"
        self._publish()

    def _baseline_lines(self) -> tuple[str, ...]:
        """Stable against every limit before the deployment, or why that is unknown."""
        if self._baseline is not None:
            return self._baseline.lines(self.spec.analysis)
        if self._no_baseline is not None:
            return (f"stable {self._no_baseline}: limits are held as written",)
        return ()

    async def _progress(self) -> None:
        """Run the stages in order; raises _Stop when the deployment must roll back."""
        for index, stage in enumerate(self.spec.stages):
            self._check_abort()
            self._stage_index = index
            self._stage_health = None
            self._unwatched = self._made_up = timedelta(0)
            self._set_phase("progressing")
            await self._shift(stage.weight)
            self._notify("stage_advanced", self._stage_summary(stage))
            await self._hold(stage)
            promote, self._pending_promote = self._pending_promote, None
            if promote is not None and promote.full:
                return

    async def _hold(self, stage: Stage) -> None:
        """Watch health for the stage's bake time and through its manual gate."""
        watcher = self._start_watcher(stage)
        try:
            await self._bake(stage, watcher)
            if self._pending_promote is not None:
                return
            if stage.manual_gate:
                self._set_phase("awaiting_approval")
                self._notify(
                    "awaiting_approval",
                    f"stage {stage.name} at {stage.weight}% waits for approval: promote or abort",
                )
                await workflow.wait_condition(lambda: self._interrupted(watcher))
            else:
                # No data is never healthy: move on only after the latest judged check was
                # (and not while paused).
                await workflow.wait_condition(
                    lambda: (
                        (self._judged_healthy(watcher) and not self._paused)
                        or self._interrupted(watcher)
                    )
                )
            self._check_stops(watcher)
        finally:
            await self._stop_watcher(watcher)

    async def _bake(self, stage: Stage, watcher: asyncio.Task[WatchHealthResult]) -> None:
        """Wait out the bake time; pause freezes it, promote ends it, a stop raises."""
        try:
            await self._bake_loop(stage, watcher)
        finally:
            self._bake_clock = None
            self._bake_base = None

    async def _bake_loop(self, stage: Stage, watcher: asyncio.Task[WatchHealthResult]) -> None:
        """Time the watcher reported unwatched is made up when the bake runs out: a new
        timer for what is owed, until nothing is (a watcher may be lost again meanwhile)."""
        remaining = stage.bake
        while True:
            if remaining <= timedelta(0):
                remaining = self._owed()
                if remaining <= timedelta(0):
                    return
                self._made_up = self._unwatched
            if self._paused:
                self._set_bake_clock(stage, remaining, None)
                self._set_phase("paused")
                await workflow.wait_condition(
                    lambda: self._interrupted(watcher) or not self._paused
                )
                self._set_phase("progressing")
            else:
                started = workflow.now()
                self._set_bake_clock(stage, remaining, started + remaining)
                if await self._baked(remaining, stage, watcher):
                    if not self._bake_watched:  # deployments started before the patch
                        return
                    remaining = timedelta(0)
                    continue
                remaining -= workflow.now() - started
            self._check_stops(watcher)
            if self._pending_promote is not None:
                return

    def _owed(self) -> timedelta:
        """Unwatched bake time not made up yet (none before the bake-watched patch)."""
        return self._unwatched - self._made_up

    def _set_bake_clock(self, stage: Stage, remaining: timedelta, ends_at: datetime | None) -> None:
        """The bake clock, with what is owed to unwatched time included in what is left."""
        self._bake_base = (remaining, ends_at)
        self._refresh_bake_clock(stage)
        if self._unwatched > timedelta(0):  # the Web UI says how much was watched
            self._publish()

    def _refresh_bake_clock(self, stage: Stage) -> None:
        if self._bake_base is None:
            return
        remaining, ends_at = self._bake_base
        owed = self._owed()
        if ends_at is not None:
            ends_at = ends_at + owed
            left = max(ends_at - workflow.now(), timedelta(0))
        else:
            left = remaining + owed
        self._bake_clock = BakeClock(
            total=stage.bake,
            left=left,
            ends_at=ends_at,
            unwatched=self._unwatched,
            made_up=self._made_up,
        )

    async def _baked(
        self, remaining: timedelta, stage: Stage, watcher: asyncio.Task[WatchHealthResult]
    ) -> bool:
        """Wait out `remaining` unless interrupted or paused first; True if it ran out.

        The timer of an interrupted bake is left to lapse, not cancelled: Temporal's
        time-skipping test server wedges on cancelling a timer that fires meanwhile.
        """
        summary = f"bake {short_duration(remaining)} at {stage.weight}%"
        if self._made_up > timedelta(0):
            summary = f"make up {span(remaining)} unwatched at {stage.weight}%"
        if not self._lapsing_timers:  # deployments started before the patch
            try:
                await workflow.wait_condition(
                    lambda: self._interrupted(watcher) or self._paused,
                    timeout=remaining,
                    timeout_summary=summary,
                )
            except TimeoutError:
                return True
            return False
        timer = asyncio.create_task(workflow.sleep(remaining, summary=summary))
        await workflow.wait_condition(
            lambda: timer.done() or self._interrupted(watcher) or self._paused
        )
        return timer.done()

    async def _promote(self) -> None:
        self._set_phase("promoting")
        canary = (self.spec.canary.address,)
        stable = self._backup.state.stable_endpoints if self._backup else ()
        if self._weight < 100:
            await self._apply(
                RouterState(canary_weight=100, stable_endpoints=stable, canary_endpoints=canary),
                f"shift 100% → {self.spec.canary.version}",
            )
        await self._apply(
            RouterState(canary_weight=100, stable_endpoints=canary, canary_endpoints=canary),
            f"point stable at {self.spec.canary.version}",
        )
        await self._apply(
            RouterState(canary_weight=0, stable_endpoints=canary, canary_endpoints=canary),
            f"serve {self.spec.canary.version} as stable",
        )

    async def _roll_back(self, reason: str, evidence: CheckReport | None) -> DeploymentResult:
        self._reason = reason
        if evidence is not None:
            self._latest_check = evidence
        self._set_phase("rolling_back")
        restored = await self._restore_backup(reason)
        self._weight = restored.canary_weight
        if self._tells_not_started and not self._shifted:
            self._notify("not_started", f"not started, no traffic moved: {reason}")
            return self._finish("not_started", reason)
        self._notify("rolled_back", f"rolled back to 100% {self.spec.stable.version}: {reason}")
        return self._finish("rolled_back", reason)

    async def _restore_backup(self, reason: str) -> RouterState:
        """Restore the backup until it works. Never abandoned, not even when cancelled."""
        assert self._backup is not None
        told: list[str] = []

        def on_trouble(problem: str | None) -> None:
            if problem is None:
                self._set_phase("rolling_back")
                return
            self._reason = f"{reason}; ROLLBACK FAILING, retrying: {problem}"
            if not told:  # one page; the workflow keeps retrying, the Web UI shows each try
                told.append(problem)
                self._notify("rollback_failing", f"rollback failing, retrying: {problem}")
            self._set_phase("failed")

        state = await restore_until_done(
            self.spec.router,
            self._backup,
            f"restore backup: 100% {self.spec.stable.version}",
            on_trouble,
        )
        self._reason = reason
        return state

    # -- activities --------------------------------------------------------------------

    async def _shift(self, weight: int) -> None:
        self._shifted = True  # from here on it may have moved traffic, even if it fails
        stable = self._backup.state.stable_endpoints if self._backup else ()
        desired = RouterState(
            canary_weight=weight,
            stable_endpoints=stable,
            canary_endpoints=(self.spec.canary.address,),
        )
        await self._apply(desired, f"shift {weight}% → {self.spec.canary.version}")

    async def _apply(self, desired: RouterState, summary: str) -> None:
        state = await workflow.execute_activity(
            SET_TRAFFIC,
            SetTrafficInput(router=self.spec.router, desired=desired),
            result_type=RouterState,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
            cancellation_type=(
                workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if self._shift_cancel_waits
                else workflow.ActivityCancellationType.TRY_CANCEL
            ),
            summary=summary,
        )
        self._weight = state.canary_weight
        self._publish()

    def _start_watcher(self, stage: Stage) -> asyncio.Task[WatchHealthResult]:
        interval = self.spec.analysis.interval
        stable = self._backup.state.stable_endpoints if self._backup else ()
        expected = RouterState(
            canary_weight=stage.weight,
            stable_endpoints=stable,
            canary_endpoints=(self.spec.canary.address,),
        )
        return workflow.start_activity(
            WATCH_HEALTH,
            WatchHealthInput(
                service=self.spec.service,
                stage=stage.name,
                router=self.spec.router,
                expected=expected,
                analysis=self.spec.analysis,
                stable_version=self.spec.stable.version,
                canary_version=self.spec.canary.version,
                baseline=self._baseline,
            ),
            result_type=WatchHealthResult,
            start_to_close_timeout=timedelta(days=30),
            heartbeat_timeout=heartbeat_timeout(interval),
            retry_policy=WATCH_RETRIES,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"watch health at {stage.weight}% every {short_duration(interval)}",
        )

    async def _stop_watcher(self, watcher: asyncio.Task[WatchHealthResult]) -> None:
        """Cancel the watcher and wait until it has stopped, so it cannot undo the next shift.

        A watcher whose worker died cannot confirm the cancel: its attempt times out
        instead, and it is stopped all the same (a live but hung attempt learns of it at
        its next heartbeat). Before the patch this rolled a healthy deployment back.
        """
        if watcher.done():
            return
        watcher.cancel()
        try:
            await watcher
        except ActivityError as err:
            if is_cancelled_exception(err):
                return
            if isinstance(err.cause, TemporalTimeout) and workflow.patched(WATCHER_LOST_PATCH):
                return
            raise
        except asyncio.CancelledError:
            pass

    # -- decisions ---------------------------------------------------------------------

    def _interrupted(self, watcher: asyncio.Task[WatchHealthResult]) -> bool:
        return (
            self._abort is not None
            or self._pending_promote is not None
            or self._watch_alarm(watcher) is not None
        )

    def _judged_healthy(self, watcher: asyncio.Task[WatchHealthResult]) -> bool:
        if self._stage_health == "healthy":
            return True
        ended_healthy = watcher.done() and not watcher.cancelled() and not watcher.exception()
        return ended_healthy and watcher.result().status == "healthy"

    def _check_abort(self) -> None:
        if self._abort is not None:
            reason = self._abort.reason or "no reason given"
            raise _Stop(f"aborted by {self._abort.by}: {reason}", self._latest_check)

    def _check_stops(self, watcher: asyncio.Task[WatchHealthResult]) -> None:
        self._check_abort()
        alarm = self._watch_alarm(watcher)
        if alarm is not None:
            raise alarm

    def _watch_alarm(self, watcher: asyncio.Task[WatchHealthResult]) -> _Stop | None:
        """A watcher that ended on a breach, on lasting lack of data, or on an error."""
        if not watcher.done() or watcher.cancelled():
            return None
        error = watcher.exception()
        if error is not None:
            if is_cancelled_exception(error):
                return None
            return _Stop(
                f"health watch failed: {root_cause(error)}", self._latest_check, unhealthy=True
            )
        result = watcher.result()
        if result.status == "healthy":
            return None
        self._latest_check = result.last or self._latest_check
        stage = self._current_stage()
        where = f"stage {stage.name if stage else '?'} ({self._weight}%), check {result.checks}"
        detail = result.last.describe() if result.last else "no check completed"
        return _Stop(f"health {result.status} at {where}: {detail}", result.last, unhealthy=True)

    def _refusal(self, action: Action) -> str | None:
        """Why `action` makes no sense right now, or None if it does."""
        phase = self._phase
        if phase in FINISHED:
            return f"deployment already {phase}"
        if phase in ("rolling_back", "failed"):
            return "deployment is rolling back"
        if phase == "promoting":
            return "deployment is already promoting to 100%"
        if self._abort is not None:
            return f"deployment is being aborted (by {self._abort.by})"
        if action == "pause" and (self._paused or phase != "progressing"):
            return "already paused" if self._paused else f"nothing to pause while {phase}"
        if action == "resume" and not self._paused:
            return "deployment is not paused"
        if action == "promote" and phase in ("validating", "backing_up", "measuring_baseline"):
            return f"nothing to promote yet ({phase})"
        return None

    # -- controls ----------------------------------------------------------------------

    @workflow.signal(name="promote")
    def promote_signal(self, request: PromoteInput | None = None) -> None:
        self._control("promote", request or PromoteInput())

    @workflow.signal(name="abort")
    def abort_signal(self, request: ControlInput | None = None) -> None:
        self._control("abort", request or ControlInput())

    @workflow.signal(name="pause")
    def pause_signal(self, request: ControlInput | None = None) -> None:
        self._control("pause", request or ControlInput())

    @workflow.signal(name="resume")
    def resume_signal(self, request: ControlInput | None = None) -> None:
        self._control("resume", request or ControlInput())

    @workflow.update(name="promote")
    def promote_update(self, request: PromoteInput | None = None) -> DeploymentStatus:
        self._control("promote", request or PromoteInput())
        return self.status()

    @promote_update.validator
    def _validate_promote(self, request: PromoteInput | None = None) -> None:
        self._validate("promote")

    @workflow.update(name="abort")
    def abort_update(self, request: ControlInput | None = None) -> DeploymentStatus:
        self._control("abort", request or ControlInput())
        return self.status()

    @abort_update.validator
    def _validate_abort(self, request: ControlInput | None = None) -> None:
        self._validate("abort")

    @workflow.update(name="pause")
    def pause_update(self, request: ControlInput | None = None) -> DeploymentStatus:
        self._control("pause", request or ControlInput())
        return self.status()

    @pause_update.validator
    def _validate_pause(self, request: ControlInput | None = None) -> None:
        self._validate("pause")

    @workflow.update(name="resume")
    def resume_update(self, request: ControlInput | None = None) -> DeploymentStatus:
        self._control("resume", request or ControlInput())
        return self.status()

    @resume_update.validator
    def _validate_resume(self, request: ControlInput | None = None) -> None:
        self._validate("resume")

    @workflow.signal(name=HEALTH_REPORT)
    def health_report(self, report: CheckReport) -> None:
        """A watcher's judged health changed: shown in the status and Web UI details, and a
        stage moves on by itself only once its latest judged check was healthy."""
        stage = self._current_stage()
        if self._phase in WATCHING and stage is not None and report.stage == stage.name:
            self._latest_check = report
            if report.verdict.status != "inconclusive":
                self._stage_health = report.verdict.status
            self._note_unwatched(report, stage)
            self._publish()

    def _note_unwatched(self, report: CheckReport, stage: Stage) -> None:
        """The stage's watcher was not running for `report.unwatched` so far (its worker
        died): the bake is made longer by as much."""
        if self._bake_watched and report.unwatched > self._unwatched:
            self._unwatched = report.unwatched
            self._refresh_bake_clock(stage)

    @workflow.query(name="status")
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
            paused=self._paused,
            pending_promote=self._pending_promote,
            latest_check=self._latest_check,
            reason=self._reason,
            controls=tuple(self._controls),
            bake=self._bake_clock,
            notification_failures=tuple(self._notification_failures),
            baseline=self._baseline,
            no_baseline=self._no_baseline,
            baseline_lines=self._baseline_lines(),
        )

    def _validate(self, action: Action) -> None:
        refusal = self._refusal(action)
        if refusal is not None:
            raise ValueError(f"cannot {action}: {refusal}")

    def _control(self, action: Action, request: ControlInput) -> None:
        refusal = self._refusal(action)
        if refusal is not None:
            workflow.logger.warning("ignored %s from %s: %s", action, request.by, refusal)
            return
        record = ControlRecord(
            action=action,
            by=request.by,
            reason=request.reason,
            at=workflow.now(),
            full=isinstance(request, PromoteInput) and request.full,
        )
        self._controls.append(record)
        if action == "promote":
            self._pending_promote = record
            self._paused = False
        elif action == "abort":
            self._abort = record
        else:
            self._paused = action == "pause"
            self._notify(
                "paused" if self._paused else "resumed",
                f"{'paused' if self._paused else 'resumed'}"
                + (f": {request.reason}" if request.reason else ""),
                by=request.by,
            )
        self._publish()

    @workflow.update(name=HEALTH_LAPSED)
    def health_lapsed(self, report: CheckReport) -> DeploymentStatus:
        """The watcher had no data past the limit and the spec says pause for a person.

        Evidence from before the lapse no longer counts: after a resume the stage moves on
        only once a new check is healthy. Reached only by specs with `on_inconclusive:
        pause`, which did not exist before this handler, so no running deployment can
        change course (no patch needed).
        """
        lapsed = self.spec.analysis.inconclusive_checks_tolerated + 1
        record = ControlRecord(
            action="pause",
            by="sluicegate",
            reason=f"no data for {lapsed} checks in a row: {report.describe()}",
            at=workflow.now(),
        )
        self._controls.append(record)
        self._paused = True
        self._stage_health = None
        self._latest_check = report
        if (stage := self._current_stage()) is not None:
            self._note_unwatched(report, stage)
        self._notify(
            "paused",
            f"paused for a person: {record.reason}; resume, promote or abort",
            by=record.by,
        )
        self._publish()
        return self.status()

    @health_lapsed.validator
    def _validate_health_lapsed(self, report: CheckReport) -> None:
        self._validate("pause")
        stage = self._current_stage()
        if stage is None or report.stage != stage.name:
            raise ValueError(f"cannot pause: the report is from stage {report.stage!r}")

    # -- notifications -----------------------------------------------------------------

    def _notify(
        self, event: Event, summary: str, evidence: tuple[str, ...] = (), by: str | None = None
    ) -> None:
        """Log it, and queue a notification; the courier delivers them in order, off the
        critical path."""
        workflow.logger.info("%s: %s", event, summary)  # not repeated on replay
        if not self._notifying:
            return
        stage = self._current_stage()
        info = workflow.info()
        self._outbox.append(
            Notification(
                event=event,
                severity=severity_of(event, self._weight),
                service=self.spec.service,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                stable_version=self.spec.stable.version,
                canary_version=self.spec.canary.version,
                stage=stage.name if stage else None,
                canary_weight=self._weight,
                summary=summary,
                evidence=evidence,
                by=by,
                at=workflow.now(),
            )
        )

    def _notify_breach(self, stop: _Stop) -> None:
        stage = self._current_stage()
        where = f"stage {stage.name} " if stage else ""
        evidence = stop.evidence.verdict.lines() if stop.evidence else (stop.reason,)
        self._notify("breach", f"unhealthy at {where}{self._weight}%: rolling back", evidence)

    async def _deliver_notifications(self) -> None:
        """Deliver queued notifications one at a time, so they arrive in order."""
        while not self._stop_delivering:
            await workflow.wait_condition(lambda: bool(self._outbox))
            notification = self._outbox[0]
            self._delivering = True
            try:
                report = await workflow.execute_activity(
                    NOTIFY,
                    NotifyInput(notification=notification),
                    result_type=DeliveryReport,
                    start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=QUICK_HEARTBEAT,
                    schedule_to_close_timeout=NOTIFICATION_GRACE * 2,
                    retry_policy=NOTIFY_RETRIES,
                    summary=f"notify {notification.event} ({notification.severity})",
                )
                problems = [f"{f.channel}: {f.error}" for f in report.failed]
            except ActivityError as err:
                problems = [root_cause(err)]
            finally:
                self._delivering = False
            if problems:
                self._notification_failures += [f"{notification.event} → {p}" for p in problems]
                self._publish()
            self._outbox.pop(0)

    async def _flush_notifications(self) -> None:
        """Give the last notifications a bounded time to go out before the workflow ends.

        Past the grace time the courier stops after the delivery in flight: a workflow
        never ends with a notify activity still pending. The grace timer is left to lapse,
        never cancelled (Temporal's time-skipping test server wedges on cancelling a timer
        that fires during the workflow task that cancels it).
        """
        if not self._outbox:
            return
        grace = asyncio.create_task(
            workflow.sleep(NOTIFICATION_GRACE, summary="last notifications")
        )
        await workflow.wait_condition(lambda: not self._outbox or grace.done())
        if not self._outbox:
            return
        self._stop_delivering = True
        await workflow.wait_condition(lambda: not self._delivering)
        if events := ", ".join(n.event for n in self._outbox):
            self._notification_failures.append(f"not delivered before the end: {events}")

    def _plan(self) -> str:
        weights = " → ".join(f"{stage.weight}%" for stage in self.spec.stages)
        return f"{self.spec.stable.version} → {self.spec.canary.version} in stages {weights}"

    def _stage_summary(self, stage: Stage) -> str:
        hold = [f"bake {short_duration(stage.bake)}"] if stage.bake else []
        if stage.manual_gate:
            hold.append("then a manual gate")
        return f"stage {stage.name}: {stage.weight}% to {self.spec.canary.version}, " + (
            " ".join(hold)
        )

    # -- visibility --------------------------------------------------------------------

    def _current_stage(self) -> Stage | None:
        return self.spec.stages[self._stage_index] if self._stage_index is not None else None

    def _set_phase(self, phase: Phase) -> None:
        self._phase = phase
        self._publish()

    def _finish(self, outcome: Outcome, reason: str) -> DeploymentResult:
        self._reason = reason
        self._phase = outcome
        self._publish(outcome)
        return DeploymentResult(
            service=self.spec.service,
            canary_version=self.spec.canary.version,
            outcome=outcome,
            reason=reason,
            canary_weight=self._weight if self._backup else None,
            evidence=self._latest_check,
            backup_path=self._backup.path if self._backup else None,
            controls=tuple(self._controls),
        )

    def _publish(self, outcome: Outcome | None = None) -> None:
        """Refresh the search attributes and the Web UI's current details."""
        published = (self._phase, self._weight, outcome)
        if published != self._published:
            updates = [
                visibility.DEPLOY_SERVICE.value_set(self.spec.service),
                visibility.DEPLOY_PHASE.value_set(self._phase),
                visibility.DEPLOY_CANARY_WEIGHT.value_set(self._weight),
                visibility.DEPLOY_CANARY_VERSION.value_set(self.spec.canary.version),
            ]
            if outcome is not None:
                updates.append(visibility.DEPLOY_OUTCOME.value_set(outcome))
            workflow.upsert_search_attributes(updates)
            self._published = published
        workflow.set_current_details(render_details(self.spec, self.status()))
