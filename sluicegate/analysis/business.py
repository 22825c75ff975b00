"""Business metrics: the canary's value against stable's at the same moment."""

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
