"""Business metrics against stable's at the same moment, and quantiles for display."""

from __future__ import annotations

from sluicegate.analysis.samples import Sample
from sluicegate.analysis.verdict import MetricResult, Status
from sluicegate.spec import BusinessCheck


def business_result(rule: BusinessCheck, sample: Sample) -> MetricResult:
    """The canary's business metric against stable's at the same moment."""
    canary = sample.canary.business.get(rule.metric) if sample.canary else None
    stable = sample.stable.business.get(rule.metric) if sample.stable else None
    if rule.max_drop is not None:
        direction, bound = "min", (stable or 0.0) * (1 - rule.max_drop)
    else:
        direction, bound = "max", (stable or 0.0) * (1 + (rule.max_rise or 0.0))
    if canary is None or stable is None:
        status: Status = "inconclusive"
    elif direction == "min":
        status = "breach" if canary < bound else "healthy"
    else:
        status = "breach" if canary > bound else "healthy"
    return MetricResult(
        metric=rule.metric,
        window="check",
        value=canary,
        bound=bound,
        direction=direction,
        requests=0,
        status=status,
        kind="business",
        baseline=stable,
    )


def quantile(buckets: tuple[tuple[float, int], ...], q: float) -> float | None:
    """Estimate a quantile from cumulative histogram buckets, as Prometheus does.

    Linear interpolation inside the bucket that holds the rank; a rank in the open-ended
    last bucket reports that bucket's lower bound (the largest finite bound).
    """
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0
    for upper_bound, count in buckets:
        if count >= rank:
            if upper_bound == float("inf"):
                return lower_bound if lower_count or lower_bound else None
            if count == lower_count:
                return upper_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = upper_bound, count
    return lower_bound
