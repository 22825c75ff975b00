"""Each arm's numbers over one check, and the trend of the last checks as sparklines."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.samples import ArmWindow, Sample, arm_window

QUANTILES = (0.5, 0.99)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class ArmNumbers(_Model):
    """One arm's numbers over one check's window."""

    requests: int
    errors: int
    p50_ms: float | None = Field(default=None, description="None: no latency measured")
    p99_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def arm_numbers(window: ArmWindow | None) -> ArmNumbers | None:
    """Requests, errors and latency quantiles of one arm's window; None without data."""
    if window is None:
        return None
    p50, p99 = (_quantile(window, q) for q in QUANTILES)
    return ArmNumbers(requests=window.requests, errors=window.errors, p50_ms=p50, p99_ms=p99)


def _quantile(window: ArmWindow, q: float) -> float | None:
    """The smallest finite bucket bound holding a share `q` of the timed requests."""
    timed = window.timed
    if timed == 0:
        return None
    return next(
        (b for b in window.bounds if math.isfinite(b) and window.at_or_below(b) >= q * timed),
        None,
    )


def check_numbers(previous: Sample, current: Sample) -> tuple[ArmNumbers | None, ...]:
    """(stable, canary) numbers between two samples."""
    return tuple(
        arm_numbers(arm_window(getattr(previous, arm), getattr(current, arm)))
        for arm in ("stable", "canary")
    )


class TrendPoint(_Model):
    """One check's error rates, for the sparklines of `sluice watch` and the Web UI."""

    canary: float | None
    stable: float | None


TREND_LENGTH = 20  # checks a trend keeps


def extend_trend(
    trend: tuple[TrendPoint, ...], stable: ArmNumbers | None, canary: ArmNumbers | None
) -> tuple[TrendPoint, ...]:
    point = TrendPoint(
        canary=canary.error_rate if canary else None, stable=stable.error_rate if stable else None
    )
    return (*trend, point)[-TREND_LENGTH:]


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], top: float | None = None) -> str:
    """`▁▁▂█`: each value against `top` (default: the largest); a gap is a space."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) if top is None else top
    marks: list[str] = []
    for value in values:
        if value is None:
            marks.append(" ")
        elif top <= 0:
            marks.append(SPARKS[0])
        else:
            marks.append(SPARKS[min(int(value / top * (len(SPARKS) - 1) + 0.5), len(SPARKS) - 1)])
    return "".join(marks)


def trend_lines(trend: Sequence[TrendPoint]) -> tuple[str, str] | None:
    """Canary's and stable's error rates over the last checks, on one scale."""
    if not trend:
        return None
    values = [v for p in trend for v in (p.canary, p.stable) if v is not None]
    top = max(values, default=0.0)
    scale = f"(0 to {top * 100:.3g}%)" if top else "(all 0%)"
    canary = sparkline([p.canary for p in trend], top)
    stable = sparkline([p.stable for p in trend], top)
    return f"canary errors {canary} {scale}", f"stable errors {stable}"
