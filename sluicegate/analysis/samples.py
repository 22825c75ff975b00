"""What metric sources measure: cumulative counters per arm, sampled over time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # JSON has no infinity: the last bucket bound (inf) travels as the string "Infinity".
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class ArmCounters(_Model):
    """Cumulative counters of one arm (stable or canary) at one instant."""

    requests: int = Field(ge=0)
    errors: int = Field(ge=0, description="requests answered 5xx, upstream resets included")
    latency_buckets: tuple[tuple[float, int], ...] = Field(
        default=(), description="cumulative (upper bound in ms, count), ascending, last is inf"
    )
    business: dict[str, float] = Field(
        default_factory=dict, description="business metrics as of now (values, not counters)"
    )

    def since(self, earlier: ArmCounters) -> ArmCounters:
        """Counters accumulated after `earlier`; a restarted source counts from zero."""
        if self.requests < earlier.requests or self.errors < earlier.errors:
            return self
        if [le for le, _ in earlier.latency_buckets] == [le for le, _ in self.latency_buckets]:
            pairs = zip(self.latency_buckets, earlier.latency_buckets, strict=True)
            buckets = tuple((le, count - before) for (le, count), (_, before) in pairs)
        else:  # a histogram that gained or lost bounds
            known = dict(earlier.latency_buckets)
            buckets = tuple((le, count - known.get(le, 0)) for le, count in self.latency_buckets)
        if any(count < 0 for _, count in buckets):
            return self
        return ArmCounters(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            latency_buckets=buckets,
            business=self.business,
        )

    def at_or_below(self, bound_ms: float) -> int:
        """Requests no slower than `bound_ms`, a bound of the histogram (0 below all)."""
        return next((count for le, count in reversed(self.latency_buckets) if le <= bound_ms), 0)

    @property
    def bounds(self) -> Iterator[float]:
        return (le for le, _ in self.latency_buckets)

    @property
    def timed(self) -> int:
        """Requests in the histogram (a proxy's own 503s may have no latency)."""
        return self.latency_buckets[-1][1] if self.latency_buckets else 0


@dataclass(frozen=True, slots=True)
class ArmWindow:
    """One arm's counts between two samples, read off the two cumulative samples (the
    judge's hot path never builds a histogram of differences)."""

    now: ArmCounters
    before: ArmCounters | None = None  # None: counted from zero (a restarted source)

    @property
    def requests(self) -> int:
        return self.now.requests - (self.before.requests if self.before else 0)

    @property
    def errors(self) -> int:
        return self.now.errors - (self.before.errors if self.before else 0)

    @property
    def bounds(self) -> Iterator[float]:
        return self.now.bounds

    @property
    def timed(self) -> int:
        return max(self.now.timed - (self.before.timed if self.before else 0), 0)

    def at_or_below(self, bound_ms: float) -> int:
        earlier = self.before.at_or_below(bound_ms) if self.before else 0
        return max(self.now.at_or_below(bound_ms) - earlier, 0)


def arm_window(before: ArmCounters | None, now: ArmCounters | None) -> ArmWindow | None:
    """`now` less `before`; None without data on either side."""
    if before is None or now is None:
        return None
    restarted = now.requests < before.requests or now.errors < before.errors
    return ArmWindow(now=now, before=None if restarted else before)


class Sample(_Model):
    """One poll of a metric source. An arm is None when the source had no data for it."""

    at: datetime
    stable: ArmCounters | None
    canary: ArmCounters | None
    notes: tuple[str, ...] = Field(
        default=(), description="what a source could not get, e.g. a query with no data"
    )
