"""How health is judged: the threshold rules, business checks, the canary-versus-stable
policy, and the analysis section that ties them to a metric source."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sluicegate.spec.fields import SpecModel
from sluicegate.spec.sources import MetricLabel, MetricSourceSpec, PrometheusSource

MetricName = Literal[
    "error_rate", "availability", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms"
]


class MetricCheck(SpecModel):
    """One health rule: a limit on the share of the canary's requests that are bad.

    `error_rate ≤ b`: at most b of the requests fail; `availability ≥ a`: at most 1 − a
    fail; `latency_pNN_ms ≤ L`: at most 1 − NN% are slower than L. A rule breaches once
    the evidence that the canary's share is above that shows beyond reasonable doubt.
    `window: check` weighs the most damning recent run of checks (a failure that starts
    after an hour of health is caught within a check or two); `window: stage` adds up
    everything since the stage began (small, persistent excesses).
    """

    metric: MetricName
    max: float | None = None
    min: float | None = None
    window: Literal["check", "stage"] = "check"

    @model_validator(mode="after")
    def _one_bound(self) -> MetricCheck:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"{self.metric}: give exactly one of max or min")
        bound = self.max if self.max is not None else self.min
        assert bound is not None
        wanted = "min" if self.metric == "availability" else "max"
        if (self.max if wanted == "max" else self.min) is None:
            meaning = {"max": "the most it may reach", "min": "the least it must keep"}[wanted]
            raise ValueError(f"{self.metric}: give {wanted} ({meaning}), not the other bound")
        if self.metric in ("error_rate", "availability") and not 0 <= bound <= 1:
            raise ValueError(f"{self.metric}: bound is a fraction between 0 and 1, got {bound}")
        if bound < 0:
            raise ValueError(f"{self.metric}: bound must not be negative, got {bound}")
        return self


class BusinessCheck(SpecModel):
    """A business metric of the canary against stable's at the same moment, e.g. accuracy
    at most 5% below stable's. The number comes from a source's `business` queries."""

    metric: MetricLabel
    max_drop: float | None = Field(
        default=None, gt=0, lt=1, description="the canary may be at most this share below stable"
    )
    max_rise: float | None = Field(
        default=None, gt=0, description="the canary may be at most this share above stable"
    )

    @model_validator(mode="after")
    def _one_bound(self) -> BusinessCheck:
        if (self.max_drop is None) == (self.max_rise is None):
            raise ValueError(f"{self.metric}: give exactly one of max_drop or max_rise")
        return self


DEFAULT_METRICS = (
    MetricCheck(metric="error_rate", max=0.01),
    MetricCheck(metric="latency_p99_ms", max=200),
    MetricCheck(metric="availability", min=0.999, window="stage"),
)


class SequentialPolicy(SpecModel):
    """How the canary is compared with stable: the false-alarm budget and what is tolerated."""

    alpha: float = Field(
        default=0.005,
        gt=0,
        lt=1,
        description="per stage: the chance of ever rolling back a canary no worse",
    )
    error_tolerance: float = Field(
        default=1.0, ge=1, description="canary error rate allowed, as a multiple of stable's"
    )
    latency_tolerance: float = Field(
        default=1.0, ge=1, description="canary share of slow requests allowed, × stable's share"
    )
    slow_quantile: float = Field(
        default=0.9, gt=0, lt=1, description="a request is slow above this quantile of stable"
    )
    error_share_of_alpha: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="of alpha, the part spent on errors; slow requests get the rest",
    )


class AnalysisSpec(SpecModel):
    """How health is judged while traffic is on the canary."""

    source: MetricSourceSpec = Field(description="where requests, errors and latency come from")
    extra_sources: tuple[MetricSourceSpec, ...] = Field(
        default=(), description="more sources, for business metrics"
    )
    business: tuple[BusinessCheck, ...] = Field(
        default=(), description="business metrics of the canary against stable's"
    )
    interval: timedelta = Field(default=timedelta(seconds=10), description="time between checks")
    mode: Literal["thresholds", "sequential", "both"] = Field(
        default="both",
        description="absolute thresholds, the canary-versus-stable comparison, or both",
    )
    metrics: tuple[MetricCheck, ...] = DEFAULT_METRICS
    sequential: SequentialPolicy = SequentialPolicy()
    failed_checks_tolerated: int = Field(
        default=0, ge=0, description="failed checks allowed per stage; one more rolls back"
    )
    inconclusive_checks_tolerated: int = Field(
        default=6,
        ge=0,
        description="consecutive checks without enough data allowed; one more acts "
        "as on_inconclusive says",
    )
    on_inconclusive: Literal["rollback", "pause"] = Field(
        default="rollback",
        description=(
            "past inconclusive_checks_tolerated: roll back, or pause for a person "
            "(traffic stays where it is; resume, promote or abort)"
        ),
    )
    min_requests: int = Field(
        default=20, ge=1, description="canary requests a stage needs before it can be healthy"
    )
    limits_alpha: float = Field(
        default=0.001,
        gt=0,
        lt=0.5,
        description="per rule and stage: the chance of ever breaching a limit the canary "
        "keeps (also the confidence of stable's baseline bound)",
    )
    baseline: timedelta = Field(
        default=timedelta(seconds=60),
        description="how long stable is watched before any traffic moves (0: not at all)",
    )

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError(f"must be at least 0.1 s, got {value.total_seconds()} s")
        return value

    @field_validator("baseline")
    @classmethod
    def _baseline_length(cls, value: timedelta) -> timedelta:
        if value < timedelta(0) or value > timedelta(hours=1):
            raise ValueError(f"must be 0 to 1 hour, got {value.total_seconds():g} s")
        return value

    @field_validator("metrics")
    @classmethod
    def _some_metrics(cls, value: tuple[MetricCheck, ...]) -> tuple[MetricCheck, ...]:
        if not value:
            raise ValueError("needs at least one metric check")
        return value

    @model_validator(mode="after")
    def _sources_serve_the_checks(self) -> AnalysisSpec:
        if isinstance(self.source, PrometheusSource) and not self.source.counts_requests:
            raise ValueError(
                "source: needs requests and errors queries (business-only Prometheus "
                "sources go in extra_sources)"
            )
        latency = [m.metric for m in self.metrics if m.metric.startswith("latency_")]
        if latency and not self.source.measures_latency:
            raise ValueError(
                f"metrics: {', '.join(latency)} need latency histograms, which this "
                f"{self.source.type} source does not provide; list metrics without "
                "latency rules (e.g. error_rate and availability) or use a source with "
                "latency (envoy, http_probe, prometheus with latency_buckets)"
            )
        offered = {
            name
            for source in (self.source, *self.extra_sources)
            if isinstance(source, PrometheusSource)
            for name in source.business
        }
        for check in self.business:
            if check.metric not in offered:
                known = ", ".join(sorted(offered)) or "none"
                raise ValueError(
                    f"business metric {check.metric!r} comes from no source; add a query for "
                    f"it to a prometheus source's business (offered: {known})"
                )
        return self
