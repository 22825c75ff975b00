"""Each absolute rule of a spec as a share of bad requests, and how to count them."""

from __future__ import annotations

import math

from sluicegate.analysis.samples import ArmCounters, ArmWindow
from sluicegate.spec import MetricCheck

Counted = ArmCounters | ArmWindow

QUANTILES = {"latency_p50_ms": 0.50, "latency_p90_ms": 0.90, "latency_p99_ms": 0.99}


def share_bound(rule: MetricCheck) -> float:
    """The largest share of bad requests the rule allows."""
    if rule.metric == "error_rate":
        assert rule.max is not None
        return rule.max
    if rule.metric == "availability":
        assert rule.min is not None
        return 1 - rule.min
    return 1 - QUANTILES[rule.metric]


def is_latency(rule: MetricCheck) -> bool:
    return rule.metric in QUANTILES


def slower_than(rule: MetricCheck, arm: Counted) -> float | None:
    """The histogram bound a latency rule counts above: the smallest finite bound at or
    above the limit. Counting above it undercounts the slow requests, so the test never
    raises more false alarms than an exact count would. None without such a bound (and
    for rules that are not about latency)."""
    if not is_latency(rule):
        return None
    limit = rule.max
    assert limit is not None
    return next((le for le in arm.bounds if le >= limit and math.isfinite(le)), None)


def bad_requests(rule: MetricCheck, arm: Counted) -> tuple[int, int, float | None] | None:
    """(bad, out of how many, the latency bound counted above) for the rule on `arm`.

    Errors count out of all requests; slow requests out of the requests in the latency
    histogram (a proxy's own 503s may have no latency: they are errors, not slow). None if
    the histogram has no bound at or above a latency limit: nothing can be counted."""
    if not is_latency(rule):
        return arm.errors, arm.requests, None
    bound = slower_than(rule, arm)
    if bound is None:
        return None
    return max(arm.timed - arm.at_or_below(bound), 0), arm.timed, bound
