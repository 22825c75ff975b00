"""What a judge concludes and the numbers it concluded from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["healthy", "breach", "inconclusive"]


class MetricResult(BaseModel):
    """One metric's value against its bound, over its window."""

    model_config = ConfigDict(frozen=True)

    metric: str
    window: Literal["check", "stage"]
    value: float | None
    bound: float
    direction: Literal["max", "min"]
    requests: int
    status: Status
    # Added after the first release (business metrics): old histories decode without them.
    # `threshold` is the point-estimate judge of 0.1.x; `limit` judges the canary's share of
    # bad requests on evidence, `stable_limit` stable's, while the canary has traffic.
    kind: Literal["threshold", "business", "limit", "stable_limit"] = "threshold"
    baseline: float | None = Field(
        default=None, description="stable's value, which a business metric is judged against"
    )
    events: int | None = Field(default=None, description="bad requests behind the evidence")
    share_bound: float | None = Field(default=None, description="largest share of bad allowed")
    checks: int | None = Field(default=None, description="checks the counts span; None: stage")
    slower_than_ms: float | None = Field(default=None, description="a latency rule's bucket")
    e_value: float | None = Field(default=None, description="evidence of a share above bound")
    evidence_bound: float | None = Field(default=None, description="e_value that breaches")
    note: str | None = Field(default=None, description="e.g. why the canary's bound moved")

    def describe(self) -> str:
        if self.kind in ("limit", "stable_limit"):
            return self._describe_limit()
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        sign = "<=" if self.direction == "max" else ">="
        if self.kind == "business":
            if self.baseline is None:
                return f"{self.metric} = {shown} (stable: no data)"
            return (
                f"{self.metric} = {shown} (must be {sign} {self.bound:.4g}, "
                f"from stable's {self.baseline:.4g})"
            )
        return (
            f"{self.metric} = {shown} (must be {sign} {self.bound:g}; "
            f"{self.requests} canary requests this {self.window})"
        )

    def brief(self) -> str:
        """`latency_p99_ms 299 > 200`: the comparison that holds, `?` without data."""
        if self.kind in ("limit", "stable_limit"):
            return self._brief_limit()
        if self.value is None:
            return f"{self.metric} ? {self.bound:g}"
        holds = {"max": ("<=", ">"), "min": (">=", "<")}[self.direction]
        sign = holds[0] if self.status == "healthy" else holds[1]
        return f"{self.metric} {self.value:.3g} {sign} {self.bound:g}"

    def _what(self) -> str:
        """`error_rate`, `latency_p99_ms`; stable's are named so."""
        return f"stable's {self.metric}" if self.kind == "stable_limit" else self.metric

    def _span(self) -> str:
        if self.checks is None:
            return "this stage"
        return "in the last check" if self.checks == 1 else f"in the last {self.checks} checks"

    def _brief_limit(self) -> str:
        """`error_rate 0 of 412 ≤ 1%`, `stable's error_rate 300 of 9,000 > 1%`."""
        if self.events is None:
            return f"{self._what()} no data"
        sign = ">" if self.status == "breach" else "≤"
        share = percent(self.share_bound or 0.0)
        slow = f" >{self.slower_than_ms:g} ms" if self.slower_than_ms else ""
        return f"{self._what()}{slow} {self.events:,} of {self.requests:,} {sign} {share}"

    def _describe_limit(self) -> str:
        """`error_rate: 20 of 20 canary requests bad in the last check (100%; at most 1%
        allowed), evidence 1e+30 of 1e+04`."""
        who = "stable" if self.kind == "stable_limit" else "canary"
        bad = f"slower than {self.slower_than_ms:g} ms" if self.slower_than_ms else "failed"
        if self.events is None or not self.requests:
            text = f"{self._what()}: no {who} requests to judge"
        else:
            text = (
                f"{self._what()}: {self.events:,} of {self.requests:,} {who} requests {bad} "
                f"{self._span()} ({percent(self.events / self.requests)}; at most "
                f"{percent(self.share_bound or 0.0)} allowed)"
            )
        if self.status == "breach" and self.e_value is not None:
            text += f", evidence {self.e_value:.3g} of {self.evidence_bound:.3g}"
            if self.kind == "stable_limit":
                text += ": stable began breaching while the canary had traffic"
        if self.note:
            text += f"; {self.note}"
        return text


def percent(share: float) -> str:
    """`1%`, `0.1%`, `99.7%`: three significant digits."""
    return f"{share * 100:.3g}%"


class ComparisonResult(BaseModel):
    """The evidence of one comparison, as operators see it."""

    model_config = ConfigDict(frozen=True)

    metric: Literal["errors", "slow_requests"]
    canary_events: int
    canary_requests: int
    stable_events: int
    stable_requests: int
    rate_ratio: float | None
    ratio_interval: tuple[float, float] | None
    e_value: float = Field(description="evidence against 'no worse than tolerated'")
    bound: float = Field(description="the canary is rolled back when e_value reaches this")
    tolerance: float
    slow_above_ms: float | None = None
    status: Status

    def brief(self) -> str:
        """`errors 0 of 412 vs stable 3 of 7,790`."""
        slow = f" >{self.slow_above_ms:g} ms" if self.slow_above_ms else ""
        return (
            f"{self.metric}{slow} {self.canary_events:,} of {self.canary_requests:,} vs stable "
            f"{self.stable_events:,} of {self.stable_requests:,}"
        )

    def describe(self) -> str:
        """The counts, the ratio and how far the evidence has come."""
        ratio = "n/a" if self.rate_ratio is None else f"{self.rate_ratio:.2f}×"
        slow = f" (slower than {self.slow_above_ms:g} ms)" if self.slow_above_ms else ""
        return (
            f"{self.metric}{slow}: canary {self.canary_events:,} of {self.canary_requests:,} "
            f"vs stable {self.stable_events:,} of {self.stable_requests:,} this stage, "
            f"ratio {ratio}, evidence {self.e_value:.3g} of {self.bound:g}"
        )


class Verdict(BaseModel):
    """`breach` if any metric or comparison breached, else `inconclusive` if any lacked
    data, else healthy."""

    model_config = ConfigDict(frozen=True)

    status: Status
    results: tuple[MetricResult, ...]
    # Added after the first release: recorded histories without it must still decode.
    comparisons: tuple[ComparisonResult, ...] = ()

    # Added with the evidence-based limits (0.2): what the stage must do now.
    rollback: bool = Field(default=False, description="roll back now (tolerances applied)")
    lapsed: bool = Field(default=False, description="no data for longer than tolerated")
    canary_requests: int | None = Field(default=None, description="this check's canary requests")

    @classmethod
    def of(
        cls, results: tuple[MetricResult, ...], comparisons: tuple[ComparisonResult, ...] = ()
    ) -> Verdict:
        """Combine limits, business metrics and comparisons: any breach breaches."""
        statuses: list[Status] = [r.status for r in (*comparisons, *results)]
        return cls(status=combined_status(statuses), results=results, comparisons=comparisons)

    @property
    def breaches(self) -> tuple[MetricResult | ComparisonResult, ...]:
        return tuple(r for r in (*self.results, *self.comparisons) if r.status == "breach")

    def lines(self) -> tuple[str, ...]:
        """The breaching metrics and comparisons if any, else all of them, one a line."""
        everything = (*self.results, *self.comparisons)
        return tuple(r.describe() for r in self.breaches or everything)

    def describe(self) -> str:
        return "; ".join(self.lines())

    def brief(self) -> str:
        """One short line: every metric against its bound, and the check's canary requests."""
        requests = self.canary_requests
        if requests is None:  # verdicts of 0.1.x
            requests = min((r.requests for r in self.results if r.window == "check"), default=0)
        parts = [r.brief() for r in self.results] + [c.brief() for c in self.comparisons]
        return f"{self.status:<12} {', '.join(parts)} ({requests} canary requests)"


def combined_status(statuses: list[Status]) -> Status:
    if "breach" in statuses:
        return "breach"
    if "inconclusive" in statuses:
        return "inconclusive"
    return "healthy"
