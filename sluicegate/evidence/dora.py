"""What a deployment's records say of it as a whole, and the DORA figures over a window."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.verdict import percent
from sluicegate.evidence.records import (
    OUTCOMES,
    ROLLBACK_VERIFIED,
    CheckRecord,
    EventRecord,
    StoreGap,
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")


Outcome = Literal["promoted", "rolled_back", "not_started", "running"]
_OUTCOME: dict[str, Outcome] = {
    "promoted": "promoted",
    "rolled_back": "rolled_back",
    "not_started": "not_started",
}


class DeploymentSummary(_Model):
    """One deployment as the DORA figures count it."""

    deployment_id: str
    service: str
    stable_version: str
    canary_version: str
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome
    reason: str = ""
    moved_traffic: bool
    detected_at: datetime | None = Field(
        default=None, description="the breaching check, else the abort, that began the rollback"
    )
    restored_at: datetime | None = Field(default=None, description="last rollback verified")
    committed_at: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        return self.ended_at - self.started_at if self.ended_at else None

    @property
    def time_to_restore(self) -> timedelta | None:
        if self.detected_at is None or self.restored_at is None:
            return None
        return max(self.restored_at - self.detected_at, timedelta(0))

    @property
    def lead_time(self) -> timedelta | None:
        if self.outcome != "promoted" or self.committed_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.committed_at


class ChecksSeen(_Model):
    """What a deployment's checks say of it as a whole (the store sums them up in SQL)."""

    service: str
    first_at: datetime
    max_weight: int
    breach_at: datetime | None = Field(description="the first check that rolled back")

    @classmethod
    def of(cls, checks: Sequence[CheckRecord]) -> ChecksSeen | None:
        if not checks:
            return None
        breach = next((c.at for c in checks if c.rollback), None)
        return cls(
            service=checks[0].service,
            first_at=min(c.at for c in checks),
            max_weight=max(c.canary_weight for c in checks),
            breach_at=breach,
        )


def summarize(
    deployment_id: str, events: Sequence[EventRecord], checks: ChecksSeen | None
) -> DeploymentSummary | None:
    """What a deployment's events and checks say of it; None if there is nothing."""
    named = [e for e in events if e.service]
    times = [e.at for e in events] + ([checks.first_at] if checks else [])
    if not (named or checks):
        return None
    first = named[0] if named else None
    outcome_event = next((e for e in reversed(events) if e.kind in OUTCOMES), None)
    outcome = _OUTCOME[outcome_event.kind] if outcome_event else "running"
    abort = next((e for e in events if e.kind == "abort_requested"), None)
    detected = checks.breach_at if checks else None
    if detected is None and abort is not None:
        detected = abort.at
    if detected is None and (alarm := next((e for e in events if e.kind == "breach"), None)):
        detected = alarm.at
    verified = [e.at for e in events if e.kind == ROLLBACK_VERIFIED]
    moved = outcome != "not_started" and (
        (checks is not None and checks.max_weight > 0)
        or any((e.canary_weight or 0) > 0 for e in events)
        or outcome == "rolled_back"
    )
    return DeploymentSummary(
        deployment_id=deployment_id,
        service=first.service if first else checks.service if checks else "",
        stable_version=first.stable_version if first else "",
        canary_version=first.canary_version if first else "",
        started_at=min(times),
        ended_at=outcome_event.at if outcome_event else None,
        outcome=outcome,
        reason=outcome_event.summary if outcome_event else "",
        moved_traffic=moved,
        detected_at=detected if outcome == "rolled_back" else None,
        restored_at=max(verified) if verified and outcome == "rolled_back" else None,
        committed_at=next((e.committed_at for e in events if e.committed_at), None),
    )


class DeploymentEvidence(_Model):
    """Everything the store kept of one deployment, in time order: what a report shows."""

    summary: DeploymentSummary
    checks: tuple[CheckRecord, ...]
    events: tuple[EventRecord, ...]
    gaps: tuple[StoreGap, ...] = ()

    @property
    def breach(self) -> CheckRecord | None:
        return next((c for c in self.checks if c.rollback), None)

    @property
    def plan(self) -> str:
        """The plan in words, as the started notification gave it."""
        started = next((e for e in self.events if e.kind == "started"), None)
        return started.summary.removeprefix("deployment started: ") if started else ""

    def missing_checks(self) -> tuple[str, ...]:
        """Check numbers absent from the store, per stage and run (a store gap, a crash)."""
        found: dict[tuple[str, str], list[int]] = {}
        for check in self.checks:
            found.setdefault((check.run_id, check.stage), []).append(check.number)
        missing: list[str] = []
        for (_, stage), numbers in found.items():
            absent = sorted(set(range(min(numbers), max(numbers) + 1)) - set(numbers))
            if absent:
                missing.append(f"stage {stage}: checks {_ranges(absent)} not kept")
        return tuple(missing)


def _ranges(numbers: list[int]) -> str:
    """`3-5, 9`."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)


class DoraFigures(_Model):
    """The four DORA figures (and the counts behind them) over one window."""

    service: str = Field(description="* for every service")
    since: datetime
    until: datetime
    deployments: int = Field(description="deployments that moved traffic and ended")
    promoted: int
    rolled_back: int
    not_started: int = Field(description="refused before any traffic moved: not counted")
    running: int
    per_day: float = Field(description="deployments that moved traffic, per day")
    change_failure_rate: float | None = Field(description="rolled back / deployments")
    time_to_restore_median_s: float | None
    time_to_restore_max_s: float | None
    duration_median_s: float | None
    lead_time_median_s: float | None

    def row(self) -> dict[str, str]:
        """The figures as a table shows them (times are medians)."""
        return {
            "service": self.service,
            "per day": f"{self.per_day:.2f}",
            "deploys": str(self.deployments),
            "rolled back": str(self.rolled_back),
            "failure rate": _share(self.change_failure_rate),
            "restore": _seconds(self.time_to_restore_median_s),
            "duration": _seconds(self.duration_median_s),
            "lead time": _seconds(self.lead_time_median_s),
        }


def dora(
    summaries: Iterable[DeploymentSummary], since: datetime, until: datetime, service: str = "*"
) -> DoraFigures:
    """DORA figures of the deployments that began in [since, until)."""
    window = [s for s in summaries if since <= s.started_at < until]
    ended = [s for s in window if s.outcome in ("promoted", "rolled_back") and s.moved_traffic]
    failed = [s for s in ended if s.outcome == "rolled_back"]
    restores = [t.total_seconds() for s in failed if (t := s.time_to_restore) is not None]
    durations = [d.total_seconds() for s in ended if (d := s.duration) is not None]
    leads = [t.total_seconds() for s in ended if (t := s.lead_time) is not None]
    days = max((until - since).total_seconds() / 86400, 1 / 24)
    return DoraFigures(
        service=service,
        since=since,
        until=until,
        deployments=len(ended),
        promoted=len(ended) - len(failed),
        rolled_back=len(failed),
        not_started=sum(1 for s in window if s.outcome == "not_started"),
        running=sum(1 for s in window if s.outcome == "running"),
        per_day=len(ended) / days,
        change_failure_rate=len(failed) / len(ended) if ended else None,
        time_to_restore_median_s=statistics.median(restores) if restores else None,
        time_to_restore_max_s=max(restores) if restores else None,
        duration_median_s=statistics.median(durations) if durations else None,
        lead_time_median_s=statistics.median(leads) if leads else None,
    )


def _share(value: float | None) -> str:
    return "-" if value is None else percent(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    if value < 172800:
        return f"{value / 3600:.1f}h"
    return f"{value / 86400:.1f}d"
