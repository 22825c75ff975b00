"""What metric sources measure: cumulative counters per arm, sampled over time."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


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
        before = dict(earlier.latency_buckets)
        buckets = tuple((le, count - before.get(le, 0)) for le, count in self.latency_buckets)
        if any(count < 0 for _, count in buckets):
            return self
        return ArmCounters(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            latency_buckets=buckets,
            business=self.business,
        )


class Sample(_Model):
    """One poll of a metric source. An arm is None when the source had no data for it."""

    at: datetime
    stable: ArmCounters | None
    canary: ArmCounters | None
    notes: tuple[str, ...] = Field(
        default=(), description="what a source could not get, e.g. a query with no data"
    )
