"""What a judge concludes and the numbers it concluded from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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

    def describe(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        sign = "<=" if self.direction == "max" else ">="
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


class Verdict(BaseModel):
    """`breach` if any metric breached, else `inconclusive` if any lacked data, else healthy."""

    model_config = ConfigDict(frozen=True)

    status: Status
    results: tuple[MetricResult, ...]

    @property
    def breaches(self) -> tuple[MetricResult, ...]:
        return tuple(r for r in self.results if r.status == "breach")

    def describe(self) -> str:
        """The breaching metrics if any, else all of them."""
        return "; ".join(r.describe() for r in self.breaches or self.results)

    def brief(self) -> str:
        """One short line: every metric against its bound, and the check's canary requests."""
        requests = min((r.requests for r in self.results if r.window == "check"), default=0)
        metrics = ", ".join(r.brief() for r in self.results)
        return f"{self.status:<12} {metrics} ({requests} canary requests)"
