"""How the report page writes times, numbers and the names of tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sluicegate.analysis.verdict import ComparisonResult, MetricResult, percent


def when(at: datetime | None) -> str:
    """`2024-05-01 10:12:03 UTC`; `-` for none."""
    return "-" if at is None else f"{utc(at):%Y-%m-%d %H:%M:%S} UTC"


def cell_time(at: datetime) -> str:
    """A table's time (UTC), kept on one line."""
    return f"<span class='nowrap'>{utc(at):%Y-%m-%d %H:%M:%S}</span>"


def clock(at: datetime) -> str:
    """`10:12:03`: a time of day in UTC."""
    return f"{utc(at):%H:%M:%S}"


def utc(at: datetime) -> datetime:
    """The time in UTC; a naive time is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def axis_time(at: datetime) -> str:
    """A time as Plotly's date axis reads it, without an offset (the axis is UTC)."""
    return f"{utc(at):%Y-%m-%d %H:%M:%S.%f}"


def share(value: float | None) -> str:
    """`0.833%`, as the judge's evidence writes shares; `-` for none."""
    return "-" if value is None else percent(value)


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


def test_name(result: MetricResult | ComparisonResult) -> str:
    """`error_rate (canary)`, `stable's error_rate`, `errors vs stable`."""
    if isinstance(result, ComparisonResult):
        slow = f" >{result.slow_above_ms:g} ms" if result.slow_above_ms else ""
        return f"{result.metric}{slow} vs stable"
    slow = f" >{result.slower_than_ms:g} ms" if result.slower_than_ms else ""
    if result.kind == "stable_limit":
        return f"stable's {result.metric}{slow}"
    return f"{result.metric}{slow} (canary)"
