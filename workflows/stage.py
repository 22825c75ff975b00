"""Holding one stage: its health watcher, its bake, its manual gate, until the stage may
move on; a Stop is raised when the deployment must roll back instead."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import CheckReport, Phase
    from sluicegate.describe import short_duration
    from sluicegate.notifications import Event
    from sluicegate.spec import Deadline, Stage
    from workflows.bake import BakeTime
    from workflows.controls import Controls
    from workflows.watch import Stop, Watcher

# 0.2: a manual gate pages (or rolls back) past the spec's max_wait.
GATE_MAX_WAIT_PATCH = "gate-max-wait"


class Host(Protocol):
    """What the deployment offers the stage it holds."""

    controls: Controls
    latest_check: CheckReport | None

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
    ) -> None:
        self.stage = stage
        self.phase: Phase = phase  # the phase it holds in, back to after a pause
        self.max_wait = max_wait  # how long a manual gate waits for a person
        self.bake = BakeTime(stage)
        self.health: str | None = None  # the latest judged verdict reported this stage
        self._host = host

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
        is stopped at the end, whatever ends it."""
        stage, bake = self.stage, self.bake
        try:
            try:
                await self._bake_out(bake, watcher)
            finally:
                bake.stop()
            if self._host.controls.pending_promote is not None:
                return
            if stage.manual_gate:
                self._host.set_phase("awaiting_approval")
                self._host.notify(
                    "awaiting_approval",
                    f"stage {stage.name} at {stage.weight}% waits for approval: promote or abort",
                )
                await self._await_decision(watcher)
            else:
                # No data is never healthy: move on only after the latest judged check was
                # (and not while paused).
                await workflow.wait_condition(
                    lambda: (
                        (self._judged_healthy(watcher) and not self._host.controls.paused)
                        or self._interrupted(watcher)
                    )
                )
            self._check_stops(watcher)
        finally:
            await watcher.stop()

    async def _await_decision(self, watcher: Watcher) -> None:
        """Wait at the manual gate for a person; past `max_wait`, page once and keep waiting
        or roll back, as the spec says."""
        max_wait = self.max_wait
        if max_wait is None or not workflow.patched(GATE_MAX_WAIT_PATCH):
            await workflow.wait_condition(lambda: self._interrupted(watcher))
            return
        waited = short_duration(max_wait.after)
        # Left to lapse if a decision comes first (see `_timer`).
        timer = asyncio.create_task(
            workflow.sleep(max_wait.after, summary=f"max wait {waited} at the gate")
        )
        await workflow.wait_condition(lambda: timer.done() or self._interrupted(watcher))
        if self._interrupted(watcher):
            return
        stage = self.stage
        if max_wait.then == "rollback":
            raise Stop(f"no decision at stage {stage.name}'s gate within max_wait {waited}")
        self._host.notify(
            "deadline",
            f"stage {stage.name} at {stage.weight}% has waited {waited} for approval: "
            "promote or abort",
        )
        await workflow.wait_condition(lambda: self._interrupted(watcher))

    async def _bake_out(self, bake: BakeTime, watcher: Watcher) -> None:
        """Wait out the bake time; pause freezes it, promote ends it, a stop raises. Time the
        watcher reported unwatched is made up when the bake runs out: a new timer for what
        is owed, until nothing is (a watcher may be lost again meanwhile)."""
        remaining = bake.stage.bake
        while True:
            if remaining <= timedelta(0):
                if bake.owed() <= timedelta(0):
                    return
                remaining = bake.start_making_up()
            if self._host.controls.paused:
                self._set_bake(bake, remaining, paused=True)
                self._host.set_phase("paused")
                await workflow.wait_condition(
                    lambda: self._interrupted(watcher) or not self._host.controls.paused
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
            lambda: timer.done() or self._interrupted(watcher) or self._host.controls.paused
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

    def _judged_healthy(self, watcher: Watcher) -> bool:
        return self.health == "healthy" or watcher.ended_healthy()

    def _check_stops(self, watcher: Watcher) -> None:
        self._host.check_abort()
        alarm = watcher.alarm(self._host.latest_check)
        if alarm is not None:
            raise alarm
