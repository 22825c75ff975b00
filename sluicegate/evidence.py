"""What the evidence store keeps of a deployment, and what is read back out of it: pure
models and the figures computed from them (docs/REPORTS.md).

Activities write `CheckRecord`s and `EventRecord`s; the report page, `sluice report` and the
worker's DORA gauges read them back as a `DeploymentEvidence` or `DeploymentSummary`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.samples import ArmWindow, Sample, arm_window
from sluicegate.analysis.verdict import Status, Verdict
from sluicegate.notifications import Notification

# Outcome events: a deployment has ended once one of these is kept.
OUTCOMES = ("promoted", "rolled_back", "not_started")
# Events that are not notifications: written by the activity that did the thing.
ROLLBACK_VERIFIED = "rollback_verified"
HOOK = "hook"
QUANTILES = (0.5, 0.99)
_QUERY_PASSWORD = re.compile(r"([?&])password=[^&]*&?")  # libpq takes one there too


@dataclass(frozen=True)
class StoreUrl:
    """Where the store is: a SQLite file or a PostgreSQL URL (the `evidence_url` setting)."""

    kind: str  # "sqlite" or "postgresql"
    target: str  # the file's path, or the URL

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        """`postgresql://…`, `sqlite:///abs/path`, `sqlite:rel/path` or a bare file path."""
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", url)
        if url.startswith("sqlite:"):
            path = url.removeprefix("sqlite:")
            path = "/" + path.lstrip("/") if path.startswith("///") else path.removeprefix("//")
            return cls("sqlite", path)
        if "://" in url:
            raise ValueError(
                f"unknown store {url.split('://')[0]!r}: use a SQLite file path, "
                "sqlite:///absolute/path or postgresql://user@host:port/database"
            )
        return cls("sqlite", url)

    def describe(self) -> str:
        """The URL without its password."""
        if self.kind == "sqlite":
            return f"SQLite {self.target}"
        target = _QUERY_PASSWORD.sub(r"\1", self.target).rstrip("?&")
        head, _, rest = target.partition("://")
        credentials, at, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        return f"{head}://{user}{at}{host}" if at else target


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class ArmNumbers(_Model):
    """One arm's numbers over one check's window."""

    requests: int
    errors: int
    p50_ms: float | None = Field(default=None, description="None: no latency measured")
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def arm_numbers(window: ArmWindow | None) -> ArmNumbers | None:
    """Requests, errors and latency quantiles of one arm's window; None without data."""
    if window is None:
        return None
    p50, p99 = (_quantile(window, q) for q in QUANTILES)
    return ArmNumbers(requests=window.requests, errors=window.errors, p50_ms=p50, p99_ms=p99)


def _quantile(window: ArmWindow, q: float) -> float | None:
    """The smallest finite bucket bound holding a share `q` of the timed requests."""
    timed = window.timed
    if timed == 0:
        return None
    return next(
        (b for b in window.bounds if math.isfinite(b) and window.at_or_below(b) >= q * timed),
        None,
    )


def check_numbers(previous: Sample, current: Sample) -> tuple[ArmNumbers | None, ...]:
    """(stable, canary) numbers between two samples."""
    return tuple(
        arm_numbers(arm_window(getattr(previous, arm), getattr(current, arm)))
        for arm in ("stable", "canary")
    )


class TrendPoint(_Model):
    """One check's error rates, for the sparklines of `sluice watch` and the Web UI."""

    canary: float | None
    stable: float | None


TREND_LENGTH = 20  # checks a trend keeps


def extend_trend(
    trend: tuple[TrendPoint, ...], stable: ArmNumbers | None, canary: ArmNumbers | None
) -> tuple[TrendPoint, ...]:
    point = TrendPoint(
        canary=canary.error_rate if canary else None, stable=stable.error_rate if stable else None
    )
    return (*trend, point)[-TREND_LENGTH:]


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], top: float | None = None) -> str:
    """`▁▁▂█`: each value against `top` (default: the largest); a gap is a space."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) if top is None else top
    marks: list[str] = []
    for value in values:
        if value is None:
            marks.append(" ")
        elif top <= 0:
            marks.append(SPARKS[0])
        else:
            marks.append(SPARKS[min(int(value / top * (len(SPARKS) - 1) + 0.5), len(SPARKS) - 1)])
    return "".join(marks)


def trend_lines(trend: Sequence[TrendPoint]) -> tuple[str, str] | None:
    """Canary's and stable's error rates over the last checks, on one scale."""
    if not trend:
        return None
    values = [v for p in trend for v in (p.canary, p.stable) if v is not None]
    top = max(values, default=0.0)
    scale = f"(0 to {top * 100:.3g}%)" if top else "(all 0%)"
    canary = sparkline([p.canary for p in trend], top)
    stable = sparkline([p.stable for p in trend], top)
    return f"canary errors {canary} {scale}", f"stable errors {stable}"


class CheckRecord(_Model):
    """One judged check of one deployment: kept once per (run, stage, number)."""

    deployment_id: str = Field(description="the deployment's first run id")
    run_id: str
    service: str
    stage: str
    number: int
    at: datetime
    canary_weight: int
    status: Status
    rollback: bool = Field(description="this check made the stage roll back")
    stable: ArmNumbers | None
    canary: ArmNumbers | None
    verdict: Verdict
    drift: str | None = None
    notes: tuple[str, ...] = ()

    def trend_point(self) -> TrendPoint:
        return TrendPoint(
            canary=self.canary.error_rate if self.canary else None,
            stable=self.stable.error_rate if self.stable else None,
        )


class EventRecord(_Model):
    """One thing that happened to a deployment: a notification's event, a hook's run, a
    rollback verified by read-back. Kept once per (run, kind, at, detail)."""

    deployment_id: str = Field(description="empty when the writer knew only the run")
    run_id: str
    service: str = ""
    kind: str
    at: datetime
    stage: str | None = None
    canary_weight: int | None = None
    summary: str = ""
    by: str | None = None
    evidence: tuple[str, ...] = ()
    stable_version: str = ""
    canary_version: str = ""
    committed_at: datetime | None = None

    ident: str = Field(
        default="", description="what makes it unique if not its time: e.g. an activity id"
    )

    @classmethod
    def of(cls, notification: Notification) -> EventRecord:
        """The event a notification tells of."""
        n = notification
        return cls(
            deployment_id=n.first_run_id or n.run_id,
            run_id=n.run_id,
            service=n.service,
            kind=n.event,
            at=n.at,
            stage=n.stage,
            canary_weight=n.canary_weight,
            summary=n.summary,
            by=n.by,
            evidence=n.evidence,
            stable_version=n.stable_version,
            canary_version=n.canary_version,
            committed_at=n.committed_at,
        )

    @property
    def key(self) -> str:
        """What makes it the same event when a retried activity writes it again."""
        if self.ident:
            return f"{self.kind}|{self.ident}"
        return f"{self.kind}|{self.at.isoformat()}|{self.summary}"


class StoreGap(_Model):
    """A time the store could not take what the activities wrote: what was lost."""

    began_at: datetime
    ended_at: datetime
    checks: int = Field(description="checks not kept")
    events: int = Field(description="events not kept")
    error: str
    deployments: tuple[str, ...] = Field(default=(), description="deployment ids affected")

    def describe(self) -> str:
        return (
            f"evidence store unavailable {self.began_at:%Y-%m-%d %H:%M:%S} to "
            f"{self.ended_at:%H:%M:%S} UTC: {self.checks} checks and {self.events} events "
            f"not kept ({self.error})"
        )


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
    return "-" if value is None else f"{value * 100:.3g}%"


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
