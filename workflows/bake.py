"""One stage's bake time: what is left of it, and the time its watcher reported it was not
watching (its worker died), which the bake is made longer by, so a stage is watched for
its whole bake."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import BakeClock
    from sluicegate.describe import short_duration, span
    from sluicegate.spec import Stage


class BakeTime:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.unwatched = timedelta(0)  # reported by the watcher so far
        self.made_up = timedelta(0)  # of which the bake was extended by already
        self.clock: BakeClock | None = None  # set while the bake runs or is paused
        # What was left, and when the running timer ends (None while paused).
        self._base: tuple[timedelta, datetime | None] | None = None

    def owed(self) -> timedelta:
        """Unwatched bake time not made up yet."""
        return self.unwatched - self.made_up

    def start_making_up(self) -> timedelta:
        """The bake ran out: what is owed becomes the next timer's length."""
        owed = self.owed()
        self.made_up = self.unwatched
        return owed

    def note_unwatched(self, unwatched: timedelta) -> None:
        if unwatched > self.unwatched:
            self.unwatched = unwatched
            self._refresh()

    def set(self, remaining: timedelta, ends_at: datetime | None) -> None:
        """The bake has `remaining` left, ending at `ends_at` (None while paused)."""
        self._base = (remaining, ends_at)
        self._refresh()

    def stop(self) -> None:
        self.clock = None
        self._base = None

    def timer_summary(self, remaining: timedelta) -> str:
        if self.made_up > timedelta(0):
            return f"make up {span(remaining)} unwatched at {self.stage.weight}%"
        return f"bake {short_duration(remaining)} at {self.stage.weight}%"

    def _refresh(self) -> None:
        """The clock, with what is owed to unwatched time included in what is left."""
        if self._base is None:
            return
        remaining, ends_at = self._base
        if ends_at is not None:
            ends_at = ends_at + self.owed()
            left = max(ends_at - workflow.now(), timedelta(0))
        else:
            left = remaining + self.owed()
        self.clock = BakeClock(
            total=self.stage.bake,
            left=left,
            ends_at=ends_at,
            unwatched=self.unwatched,
            made_up=self.made_up,
        )
