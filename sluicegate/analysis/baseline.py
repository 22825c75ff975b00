"""Stable's numbers before any traffic moves, and which limits stable already breaches.

A limit that stable itself breaches cannot be held against the canary (a hotfix for a
broken stable must be deployable): for that rule the canary is held to "no worse than
stable was", i.e. to an upper confidence bound on stable's baseline share. A limit stable
was within stays the canary's limit. While the canary has traffic, stable is held to the
larger of the limit and that bound: stable getting measurably worse than both points at
the canary harming what both share (a cache, a queue, a database).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.limits import upper_bound
from sluicegate.analysis.rules import bad_requests, share_bound
from sluicegate.analysis.samples import Sample
from sluicegate.analysis.verdict import percent
from sluicegate.spec import AnalysisSpec, MetricCheck


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RuleBaseline(_Model):
    """Stable against one limit, before the deployment."""

    metric: str
    bound: float = Field(description="the share of bad requests the rule allows")
    events: int = Field(description="stable's bad requests in the baseline")
    requests: int
    slower_than_ms: float | None = Field(default=None, description="a latency rule's bucket")
    upper: float = Field(description="upper confidence bound on stable's share")

    @property
    def measured(self) -> float | None:
        return self.events / self.requests if self.requests else None

    @property
    def breaches(self) -> bool:
        """Stable's own share was above what the rule allows."""
        return self.measured is not None and self.measured > self.bound

    @property
    def canary_bound(self) -> float:
        """What the canary is held to: the rule, or no worse than stable was."""
        return self.stable_bound if self.breaches else self.bound

    @property
    def stable_bound(self) -> float:
        """What stable is held to while the canary has traffic: no measurably worse than
        both the rule and what it was (so a stable near its limit is not taken for one
        that began to breach)."""
        return max(self.bound, self.upper)

    def describe(self, rule: MetricCheck) -> str:
        """`stable already breaches availability ≥ 99.9% (99.7% measured)`."""
        if self.measured is None:
            return f"stable served no requests to measure {rule_text(rule)} on"
        shown = rule_value(rule, self.measured, self.slower_than_ms)
        if self.breaches:
            return f"stable already breaches {rule_text(rule)} ({shown} measured)"
        return f"stable within {rule_text(rule)} ({shown} measured)"


class Baseline(_Model):
    """Stable before any traffic moved: its share against every limit."""

    seconds: float
    requests: int
    rules: tuple[RuleBaseline, ...]

    def lines(self, policy: AnalysisSpec) -> tuple[str, ...]:
        return tuple(
            rb.describe(rule) for rule, rb in zip(policy.metrics, self.rules, strict=False)
        )

    def for_rule(self, index: int) -> RuleBaseline | None:
        return self.rules[index] if index < len(self.rules) else None


def measure_baseline(first: Sample, last: Sample, policy: AnalysisSpec) -> Baseline:
    """Stable's counts between two samples taken before any traffic moved."""
    stable = last.stable.since(first.stable) if first.stable and last.stable else None
    rules: list[RuleBaseline] = []
    for rule in policy.metrics:
        counted = bad_requests(rule, stable) if stable is not None else None
        events, requests, slower = counted or (0, 0, None)
        rules.append(
            RuleBaseline(
                metric=rule.metric,
                bound=share_bound(rule),
                events=events,
                requests=requests,
                slower_than_ms=slower,
                upper=upper_bound(events, requests, policy.limits_alpha),
            )
        )
    return Baseline(
        seconds=(last.at - first.at).total_seconds(),
        requests=stable.requests if stable is not None else 0,
        rules=tuple(rules),
    )


def rule_text(rule: MetricCheck) -> str:
    """`availability ≥ 99.9%`, `error_rate ≤ 1%`, `latency_p99_ms ≤ 200`."""
    if rule.metric == "availability":
        return f"availability ≥ {percent(rule.min or 0)}"
    if rule.metric == "error_rate":
        return f"error_rate ≤ {percent(rule.max or 0)}"
    return f"{rule.metric} ≤ {rule.max:g}"


def rule_value(rule: MetricCheck, share: float, slower_than_ms: float | None = None) -> str:
    """`99.7%` availability, `0.3%` errors, `0.4% slower than 250 ms`."""
    if rule.metric == "availability":
        return percent(1 - share)
    if rule.metric == "error_rate":
        return percent(share)
    return f"{percent(share)} slower than {slower_than_ms or rule.max:g} ms"
