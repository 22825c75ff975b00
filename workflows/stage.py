"""Holding one stage: its health watcher, its bake, its manual gate, until the stage may
move on; a Stop is raised when the deployment must roll back instead."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import CheckReport, HoldState, Phase, heartbeat_timeout
    from sluicegate.describe import short_duration
    from sluicegate.notifications import Event
    from sluicegate.spec import Deadline, DeploymentSpec, Stage
    from workflows.bake import BakeTime
    from workflows.controls import Controls
    from workflows.measures import count_deadline_passed
    from workflows.watch import Stop, Watcher

# 0.2: a manual gate pages (or rolls back) past the spec's max_wait.
GATE_MAX_WAIT_PATCH = "gate-max-wait"
# 0.2: a stage held past the spec's continue_as_new_after goes on in a new run.
CONTINUE_AS_NEW_PATCH = "continue-as-new"


class HandOver(Exception):
    """The stage holds on in the deployment's next run (continue-as-new), from `state`;
    `watch_from` is the check the watcher ended on, for the next watcher to carry on from
    (None if it did not end itself: the next one starts afresh)."""

    def __init__(self, state: HoldState, watch_from: CheckReport | None) -> None:
        super().__init__("continue as new")
        self.state = state
        self.watch_from = watch_from


class Host(Protocol):
    """What the deployment offers the stage it holds."""

    controls: Controls
    latest_check: CheckReport | None

    @property
    def spec(self) -> DeploymentSpec: ...

    def set_phase(self, phase: Phase) -> None: ...

    def publish(self) -> None: ...

    def notify(
        self, event: Event, summary: str, evidence: tuple[str, ...] = (), by: str | None = None
    ) -> None: ...

    def check_abort(self) -> None: ...


class StageHold:
    def __init__(
        self,
        host: Host,
        stage: Stage,
        phase: Phase = "progressing",
        max_wait: Deadline | None = None,
        resumed: HoldState | None = None,
        watch_from: CheckReport | None = None,
    ) -> None:
        self.stage = stage
        self.phase: Phase = phase  # the phase it holds in, back to after a pause
        self.max_wait = max_wait  # how long a manual gate waits for a person
        self.bake = BakeTime(stage)
        self.health: str | None = None  # the latest judged verdict reported this stage
        self.watch_from = watch_from  # where the previous run's watcher handed over
        self._host = host
        self._resumed = resumed  # where the previous run was in this hold
        self._hand_over_at: datetime | None = None
        self._renewal: asyncio.Task[None] | None = None  # in case the watcher cannot hand over
        if resumed is not None:
            self.bake.unwatched, self.bake.made_up = resumed.unwatched, resumed.made_up
            self.health = resumed.health

    def hand_over_at(self) -> datetime | None:
        """When this run's watcher ends on a check so the deployment continues as new
        (None in a run from before continue-as-new: it holds to the end)."""
        if self._hand_over_at is None and workflow.patched(CONTINUE_AS_NEW_PATCH):
            self._hand_over_at = workflow.now() + self._host.spec.continue_as_new_after
        return self._hand_over_at

    def note(self, report: CheckReport) -> None:
        """A check the watcher reported: the stage moves on by itself only once its latest
        judged check was healthy; time reported unwatched is added to the bake."""
        if report.verdict.status != "inconclusive":
            self.health = report.verdict.status
        self.bake.note_unwatched(report.unwatched)

    def lapsed(self, report: CheckReport) -> None:
        """No data past the limit: evidence from before no longer counts."""
        self.health = None
        self.bake.note_unwatched(report.unwatched)

    async def hold(self, watcher: Watcher) -> None:
        """Watch health for the stage's bake time and through its manual gate; the watcher
        is stopped at the end, whatever ends it. Raises HandOver when the hold goes on in
        the deployment's next run."""
        stage, bake = self.stage, self.bake
        resumed = self._resumed
        try:
            self._start_renewal()
            if resumed is None or not resumed.at_gate:
                try:
                    await self._bake_out(bake, watcher)
                finally:
                    bake.stop()
                if self._host.controls.pending_promote is not None:
                    return
            if stage.manual_gate:
                self._host.set_phase("awaiting_approval")
                if resumed is None or not resumed.at_gate:
                    self._host.notify(
                        "awaiting_approval",
                        f"stage {stage.name} at {stage.weight}% waits for approval: "
                        "promote or abort",
                    )
                await self._await_decision(watcher)
            else:
                # No data is never healthy: move on only after the latest judged check was
                # (and not while paused).
                await workflow.wait_condition(
                    lambda: self._moves_on(watcher) or self._woken(watcher)
                )
                if not self._moves_on(watcher) and not self._interrupted(watcher):
                    self._hand_over(watcher, self._state(timedelta(0)))
            self._check_stops(watcher)
        finally:
            await watcher.stop()

    async def _await_decision(self, watcher: Watcher) -> None:
        """Wait at the manual gate for a person; past `max_wait`, page once and keep waiting
        or roll back, as the spec says."""
        max_wait = self.max_wait
        if max_wait is None or not workflow.patched(GATE_MAX_WAIT_PATCH):
            await self._wait_at_gate(watcher, None)
            return
        waited = short_duration(max_wait.after)
        resumed = self._resumed
        if resumed is not None and resumed.at_gate:
            deadline = resumed.gate_deadline  # None: it paged already
        else:
            deadline = workflow.now() + max_wait.after
        if deadline is not None and deadline > workflow.now():
            # Left to lapse if a decision comes first (see `_timer`).
            timer = asyncio.create_task(
                workflow.sleep(deadline - workflow.now(), summary=f"max wait {waited} at the gate")
            )
            await workflow.wait_condition(lambda: timer.done() or self._woken(watcher))
            if self._interrupted(watcher):
                return
            if not timer.done():
                self._hand_over(watcher, self._state(timedelta(0), at_gate=True, deadline=deadline))
        if deadline is not None:
            stage = self.stage
            count_deadline_passed("max_wait", max_wait.then)
            if max_wait.then == "rollback":
                raise Stop(
                    f"no decision at stage {stage.name}'s gate within max_wait {waited}",
                    cause="gate_timeout",
                )
            self._host.notify(
                "deadline",
                f"stage {stage.name} at {stage.weight}% has waited {waited} for approval: "
                "promote or abort",
            )
        await self._wait_at_gate(watcher, None)

    async def _wait_at_gate(self, watcher: Watcher, deadline: datetime | None) -> None:
        """Until a person decides or the watcher alarms; or hand over to the next run."""
        await workflow.wait_condition(lambda: self._woken(watcher))
        if not self._interrupted(watcher):
            self._hand_over(watcher, self._state(timedelta(0), at_gate=True, deadline=deadline))

    def _state(
        self, bake_left: timedelta, at_gate: bool = False, deadline: datetime | None = None
    ) -> HoldState:
        """Where the hold is, for the next run to go on from."""
        return HoldState(
            bake_left=max(bake_left, timedelta(0)),
            unwatched=self.bake.unwatched,
            made_up=self.bake.made_up,
            health=self.health,
            at_gate=at_gate,
            gate_deadline=deadline,
        )

    async def _bake_out(self, bake: BakeTime, watcher: Watcher) -> None:
        """Wait out the bake time; pause freezes it, promote ends it, a stop raises. Time the
        watcher reported unwatched is made up when the bake runs out: a new timer for what
        is owed, until nothing is (a watcher may be lost again meanwhile)."""
        remaining = bake.stage.bake if self._resumed is None else self._resumed.bake_left
        while True:
            if remaining <= timedelta(0):
                if bake.owed() <= timedelta(0):
                    return
                remaining = bake.start_making_up()
            if self._host.controls.paused:
                self._set_bake(bake, remaining, paused=True)
                self._host.set_phase("paused")
                await workflow.wait_condition(
                    lambda: self._woken(watcher) or not self._host.controls.paused
                )
                self._host.set_phase(self.phase)
            else:
                started = workflow.now()
                if await self._timer(bake, remaining, watcher):
                    remaining = timedelta(0)
                    continue
                remaining -= workflow.now() - started
            self._check_stops(watcher)
            if self._host.controls.pending_promote is not None:
                return
            if self._hand_over_due(watcher):
                self._hand_over(watcher, self._state(remaining))

    async def _timer(self, bake: BakeTime, remaining: timedelta, watcher: Watcher) -> bool:
        """Wait out `remaining` unless interrupted or paused first; True if it ran out.

        The timer of an interrupted bake is left to lapse, not cancelled: Temporal's
        time-skipping test server wedges on cancelling a timer that fires meanwhile.
        """
        self._set_bake(bake, remaining, paused=False)
        timer = asyncio.create_task(
            workflow.sleep(remaining, summary=bake.timer_summary(remaining))
        )
        await workflow.wait_condition(
            lambda: timer.done() or self._woken(watcher) or self._host.controls.paused
        )
        return timer.done()

    def _set_bake(self, bake: BakeTime, remaining: timedelta, paused: bool) -> None:
        bake.set(remaining, None if paused else workflow.now() + remaining)
        if bake.unwatched > timedelta(0):  # the Web UI says how much was watched
            self._host.publish()

    def _interrupted(self, watcher: Watcher) -> bool:
        return (
            self._host.controls.abort is not None
            or self._host.controls.pending_promote is not None
            or watcher.alarm(self._host.latest_check) is not None
        )

    def _woken(self, watcher: Watcher) -> bool:
        return self._interrupted(watcher) or self._hand_over_due(watcher)

    def _moves_on(self, watcher: Watcher) -> bool:
        return self._judged_healthy(watcher) and not self._host.controls.paused

    def _start_renewal(self) -> None:
        """Should the watcher not hand over in time (its worker is gone, or it ended
        before), the hold hands over without it a little later. Left to lapse if the hold
        ends first (see `_timer`)."""
        if self._hand_over_at is None:
            return
        interval = self._host.spec.analysis.interval
        grace = heartbeat_timeout(interval) + 2 * interval + timedelta(seconds=30)
        wait = max(self._hand_over_at + grace - workflow.now(), timedelta(seconds=1))
        self._renewal = asyncio.create_task(
            workflow.sleep(wait, summary=f"continue as new after {short_duration(wait)}")
        )

    def _hand_over_due(self, watcher: Watcher) -> bool:
        renewal = self._renewal
        return watcher.handed_over() is not None or (renewal is not None and renewal.done())

    def _hand_over(self, watcher: Watcher, state: HoldState) -> None:
        raise HandOver(state, watcher.handed_over())

    def _judged_healthy(self, watcher: Watcher) -> bool:
        return self.health == "healthy" or watcher.ended_healthy()

    def _check_stops(self, watcher: Watcher) -> None:
        self._host.check_abort()
        alarm = watcher.alarm(self._host.latest_check)
        if alarm is not None:
            raise alarm
