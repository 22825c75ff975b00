"""The absolute-threshold judge: each metric of the canary against a fixed bound."""

from __future__ import annotations

from typing import Literal

from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.analysis.verdict import MetricResult, Status, Verdict
from sluicegate.spec import AnalysisSpec, BusinessCheck, MetricCheck

Arm = Literal["stable", "canary"]
_QUANTILES = {"latency_p50_ms": 0.50, "latency_p90_ms": 0.90, "latency_p99_ms": 0.99}


def judge(stage_start: Sample, previous: Sample, current: Sample, policy: AnalysisSpec) -> Verdict:
    """Judge the canary over the last check window and over the stage so far."""
    windows = {
        "check": _window(previous, current),
        "stage": _window(stage_start, current),
    }
    results = tuple(
        _check(rule, windows[rule.window], policy.min_requests) for rule in policy.metrics
    )
    business = tuple(_business(rule, current) for rule in policy.business)
    return Verdict.of(results + business)


def judge_once(start: Sample, end: Sample, policy: AnalysisSpec, arm: Arm = "canary") -> Verdict:
    """One check of `arm` over one window (stage rules too): `sluice health` and preflight."""
    window = _window(start, end, arm)
    results = tuple(_check(rule, window, policy.min_requests) for rule in policy.metrics)
    return Verdict.of(results)


def _window(start: Sample, end: Sample, arm: Arm = "canary") -> ArmCounters | None:
    first, last = getattr(start, arm), getattr(end, arm)
    if first is None or last is None:
        return None
    return last.since(first)


def _check(rule: MetricCheck, arm: ArmCounters | None, min_requests: int) -> MetricResult:
    bound = rule.max if rule.max is not None else rule.min
    assert bound is not None
    requests = arm.requests if arm else 0
    value = _value(rule.metric, arm) if arm and requests >= min_requests else None
    if value is None:
        status: Status = "inconclusive"
    elif rule.max is not None:
        status = "breach" if value > rule.max else "healthy"
    else:
        status = "breach" if value < bound else "healthy"
    return MetricResult(
        metric=rule.metric,
        window=rule.window,
        value=value,
        bound=bound,
        direction="max" if rule.max is not None else "min",
        requests=requests,
        status=status,
    )


def _business(rule: BusinessCheck, sample: Sample) -> MetricResult:
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


def _value(metric: str, arm: ArmCounters) -> float | None:
    if metric == "error_rate":
        return arm.errors / arm.requests
    if metric == "availability":
        return 1 - arm.errors / arm.requests
    return quantile(arm.latency_buckets, _QUANTILES[metric])


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
