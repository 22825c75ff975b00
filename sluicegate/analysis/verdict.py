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
    kind: Literal["threshold", "business"] = "threshold"
    baseline: float | None = Field(
        default=None, description="stable's value, which a business metric is judged against"
    )

    def describe(self) -> str:
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
        if self.value is None:
            return f"{self.metric} ? {self.bound:g}"
        holds = {"max": ("<=", ">"), "min": (">=", "<")}[self.direction]
        sign = holds[0] if self.status == "healthy" else holds[1]
        return f"{self.metric} {self.value:.3g} {sign} {self.bound:g}"


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
        """`errors 2.1× vs stable (E 140/125)`."""
        ratio = "?" if self.rate_ratio is None else f"{self.rate_ratio:.2g}×"
        return f"{self.metric} {ratio} vs stable (E {self.e_value:.3g}/{self.bound:g})"

    def describe(self) -> str:
        ratio = "n/a" if self.rate_ratio is None else f"{self.rate_ratio:.2f}×"
        slow = f" (slower than {self.slow_above_ms:g} ms)" if self.slow_above_ms else ""
        return (
            f"{self.metric}{slow}: canary {self.canary_events}/{self.canary_requests}, stable "
            f"{self.stable_events}/{self.stable_requests}, ratio {ratio}, "
            f"evidence {self.e_value:.3g} of {self.bound:g}"
        )


class Verdict(BaseModel):
    """`breach` if any metric or comparison breached, else `inconclusive` if any lacked
    data, else healthy."""

    model_config = ConfigDict(frozen=True)

    status: Status
    results: tuple[MetricResult, ...]
    # Added after the first release: recorded histories without it must still decode.
    comparisons: tuple[ComparisonResult, ...] = ()

    @classmethod
    def of(
        cls, results: tuple[MetricResult, ...], comparisons: tuple[ComparisonResult, ...] = ()
    ) -> Verdict:
        """Combine thresholds and comparisons.

        A threshold short of requests in its window does not hold the verdict back when
        every comparison is conclusive: at low traffic the comparison, which adds up the
        whole stage, is the judge that can speak. A comparison is never conclusive
        without fresh data, so a metrics outage stays inconclusive.
        """
        compared = bool(comparisons) and all(c.status != "inconclusive" for c in comparisons)
        statuses = [c.status for c in comparisons] + [
            r.status
            for r in results
            if not (compared and r.value is None and r.kind == "threshold")
        ]
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
        requests = min((r.requests for r in self.results if r.window == "check"), default=0)
        parts = [r.brief() for r in self.results] + [c.brief() for c in self.comparisons]
        return f"{self.status:<12} {', '.join(parts)} ({requests} canary requests)"


def combined_status(statuses: list[Status]) -> Status:
    if "breach" in statuses:
        return "breach"
    if "inconclusive" in statuses:
        return "inconclusive"
    return "healthy"
