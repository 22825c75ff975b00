"""The report page's charts: the canary's weight, error rate and latency per check, and the
evidence of each test against its bound, on one time axis, each marked with the stage
starts, controls, drift, the breach and the restore (Plotly)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

import plotly.graph_objects as go  # pyright: ignore[reportMissingTypeStubs]

from frontends.client.report.words import axis_time, clock, test_name
from sluicegate.analysis.verdict import ComparisonResult, MetricResult
from sluicegate.evidence import ArmNumbers, CheckRecord, DeploymentEvidence

CONTROLS = ("paused", "resumed", "promote_requested", "abort_requested")
CANARY = "#e8590c"
STABLE = "#1c7ed6"
BREACH = "#d00000"
VERIFIED = "#2b8a3e"
PALETTE = ("#e8590c", "#1c7ed6", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5f3dc4", "#795548")
# A log axis shows e-values within this range; the hover text keeps the true value.
E_LOW, E_HIGH = 1e-6, 1e12
CHART_HEIGHT = 340

Json = dict[str, Any]  # a piece of Plotly layout: a shape, an annotation


def charts(evidence: DeploymentEvidence) -> str:
    """The charts that the kept records can draw, or why there are none."""
    marks = _Marks.of(evidence)
    parts = ["<h2>Charts <small>(times in UTC)</small></h2>"]
    weights = _weight_points(evidence)
    if weights:
        parts.append(_weight_chart(weights, marks))
    if not evidence.checks:
        parts.append("<p class='none'>No checks were kept: nothing was measured.</p>")
        return "\n".join(parts)
    parts.append(_error_chart(evidence.checks, marks))
    parts.append(_latency_chart(evidence.checks, marks))
    tests = _tests(evidence.checks)
    if tests:
        parts.append(_evidence_chart(tests, marks))
    else:
        parts.append("<p class='none'>No check was judged on evidence (e-values).</p>")
    return "\n".join(parts)


@dataclass
class _Marks:
    """What every time chart marks: stage starts, controls, drift, breach, rollback; and the
    time all of them span, so the charts line up."""

    start: datetime
    end: datetime
    stages: list[tuple[datetime, str]] = field(default_factory=lambda: [])
    controls: list[tuple[datetime, str]] = field(default_factory=lambda: [])
    drift: list[tuple[datetime, str]] = field(default_factory=lambda: [])
    breach: datetime | None = None
    verified: list[datetime] = field(default_factory=lambda: [])

    @classmethod
    def of(cls, evidence: DeploymentEvidence) -> _Marks:
        starts: dict[str, datetime] = {}
        advanced = [
            (e.at, e.stage or "stage") for e in evidence.events if e.kind == "stage_advanced"
        ]
        for at, name in advanced + [(c.at, c.stage) for c in evidence.checks]:
            starts[name] = min(at, starts.get(name, at))
        times = [e.at for e in evidence.events] + [c.at for c in evidence.checks]
        summary = evidence.summary
        return cls(
            start=min([summary.started_at, *times]),
            end=max([summary.ended_at or summary.started_at, *times]),
            stages=sorted((at, name) for name, at in starts.items()),
            controls=[
                (e.at, f"{e.by or 'someone'}: {e.summary or e.kind}")
                for e in evidence.events
                if e.by is not None or e.kind in CONTROLS
            ],
            drift=[(c.at, f"check {c.number}: {c.drift}") for c in evidence.checks if c.drift],
            breach=evidence.breach.at if evidence.breach else None,
            verified=[e.at for e in evidence.events if e.kind == "rollback_verified"],
        )

    def shapes(self) -> tuple[list[Json], list[Json]]:
        """Vertical lines and their labels, on the chart's date axis."""
        lines: list[Json] = []
        labels: list[Json] = []
        marks = [(at, f"stage {name}", "#495057", "dot") for at, name in self.stages]
        marks += [(at, "restored", VERIFIED, "dash") for at in self.verified]
        if self.breach is not None:
            marks.append((self.breach, "breach", BREACH, "solid"))
        for at, text, colour, dash in marks:
            x = axis_time(at)
            lines.append(_vline(x, colour, dash))
            hover = f"{text} at {clock(at)} UTC"
            labels.append(_label(x, text, hover, colour, "right" if text == "breach" else "left"))
        return lines, labels

    def x_range(self) -> list[str]:
        """The span of the deployment with a little room either side (more on the right, for
        the last label)."""
        room = max((self.end - self.start) * 0.02, timedelta(seconds=1))
        return [axis_time(self.start - room), axis_time(self.end + 3 * room)]

    def traces(self) -> list[go.Scatter]:
        """Controls along the top of a chart and drift along the bottom, with hover text."""
        traces: list[go.Scatter] = []
        if self.controls:
            traces.append(_mark_trace(self.controls, 0.97, "controls", "#6741d9", "diamond"))
        if self.drift:
            traces.append(_mark_trace(self.drift, 0.03, "drift", "#f08c00", "x"))
        return traces


def _vline(x: str, colour: str, dash: str) -> Json:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "width": 2 if colour == BREACH else 1.2, "dash": dash},
    }


def _label(x: str, text: str, hover: str, colour: str, side: str) -> Json:
    return {
        "x": x,
        "y": 1,
        "xref": "x",
        "yref": "paper",
        "yanchor": "bottom",
        "xanchor": side,
        "text": escape(text),
        "hovertext": escape(hover),
        "showarrow": False,
        "font": {"size": 11, "color": colour},
        "textangle": 0,
    }


def _mark_trace(
    points: Sequence[tuple[datetime, str]], y: float, name: str, colour: str, symbol: str
) -> go.Scatter:
    """Markers at a fixed height of the hidden second y axis (0 bottom, 1 top)."""
    return go.Scatter(
        x=[axis_time(at) for at, _ in points],
        y=[y] * len(points),
        yaxis="y2",
        mode="markers",
        name=name,
        marker={"color": colour, "size": 11, "symbol": symbol, "line": {"width": 1}},
        text=[escape(text) for _, text in points],
        hovertemplate="%{x}<br>%{text}<extra>" + name + "</extra>",
    )


def _figure_html(
    div_id: str, title: str, traces: Iterable[go.Scatter], marks: _Marks, yaxis: dict[str, Any]
) -> str:
    """One chart as a div and the script that draws it (Plotly's JavaScript is in <head>)."""
    lines, labels = marks.shapes()
    figure = go.Figure(data=[*traces, *marks.traces()])
    figure.update_layout(  # pyright: ignore[reportUnknownMemberType]
        title={"text": escape(title), "x": 0, "xanchor": "left", "y": 0.98},
        height=CHART_HEIGHT,
        margin={"l": 70, "r": 20, "t": 60, "b": 40},
        template="plotly_white",
        hovermode="closest",
        legend={"orientation": "h", "y": -0.18, "x": 0},
        xaxis={"type": "date", "range": marks.x_range()},
        yaxis=yaxis,
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        shapes=lines,
        annotations=labels,
    )
    html: str = figure.to_html(  # pyright: ignore[reportUnknownMemberType]
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        default_height=f"{CHART_HEIGHT}px",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='chart'>{html}</div>"


def _line(
    x: Sequence[str],
    y: Sequence[float | None],
    name: str,
    colour: str,
    dash: str = "solid",
    text: Sequence[str] | None = None,
    shape: str = "linear",
) -> go.Scatter:
    """A line of points (None: a gap), in one colour."""
    return go.Scatter(
        x=list(x),
        y=list(y),
        name=name,
        mode="lines+markers",
        line={"color": colour, "dash": dash, "shape": shape},
        marker={"size": 5},
        text=list(text) if text is not None else None,
        hovertemplate="%{x}<br>"
        + ("%{text}" if text is not None else "%{y}")
        + "<extra>"
        + escape(name)
        + "</extra>",
    )


def _weight_points(evidence: DeploymentEvidence) -> list[tuple[datetime, int]]:
    """Canary weight over time, from the checks and the events that name one."""
    points = [(c.at, c.canary_weight) for c in evidence.checks]
    points += [(e.at, e.canary_weight) for e in evidence.events if e.canary_weight is not None]
    return sorted(points, key=lambda p: p[0])


def _weight_chart(points: list[tuple[datetime, int]], marks: _Marks) -> str:
    x = [axis_time(at) for at, _ in points]
    trace = _line(x, [w for _, w in points], "canary weight %", CANARY, shape="hv")
    yaxis = {"title": {"text": "canary traffic %"}, "range": [0, 105]}
    return _figure_html("chart-weight", "Canary traffic", [trace], marks, yaxis)


def _error_chart(checks: Sequence[CheckRecord], marks: _Marks) -> str:
    x = [axis_time(c.at) for c in checks]
    traces = [
        _line(x, [_rate(c.canary) for c in checks], "canary", CANARY),
        _line(x, [_rate(c.stable) for c in checks], "stable", STABLE),
    ]
    yaxis = {"title": {"text": "error rate %"}, "rangemode": "tozero"}
    return _figure_html("chart-errors", "Error rate per check", traces, marks, yaxis)


def _rate(arm: ArmNumbers | None) -> float | None:
    """An arm's error rate in percent; None without requests."""
    rate = arm.error_rate if arm is not None else None
    return None if rate is None else rate * 100


def _latency_chart(checks: Sequence[CheckRecord], marks: _Marks) -> str:
    x = [axis_time(c.at) for c in checks]
    traces = [
        _line(x, [c.canary.p99_ms if c.canary else None for c in checks], "canary p99", CANARY),
        _line(x, [c.stable.p99_ms if c.stable else None for c in checks], "stable p99", STABLE),
        _line(
            x, [c.canary.p50_ms if c.canary else None for c in checks], "canary p50", CANARY, "dot"
        ),
        _line(
            x, [c.stable.p50_ms if c.stable else None for c in checks], "stable p50", STABLE, "dot"
        ),
    ]
    yaxis = {"title": {"text": "latency ms"}, "rangemode": "tozero"}
    return _figure_html("chart-latency", "Latency per check", traces, marks, yaxis)


@dataclass
class _Test:
    """One evidence test's e-values and bounds, check by check."""

    at: list[datetime] = field(default_factory=lambda: [])
    e_values: list[float] = field(default_factory=lambda: [])
    bounds: list[float] = field(default_factory=lambda: [])


def _tests(checks: Sequence[CheckRecord]) -> dict[str, _Test]:
    """Every evidence-judged test in the checks' verdicts, by name, in order of appearance."""
    tests: dict[str, _Test] = {}
    for check in checks:
        for result in (*check.verdict.results, *check.verdict.comparisons):
            e_value, bound = _evidence(result)
            if e_value is None or bound is None:
                continue
            test = tests.setdefault(test_name(result), _Test())
            test.at.append(check.at)
            test.e_values.append(e_value)
            test.bounds.append(bound)
    return tests


def _evidence(result: MetricResult | ComparisonResult) -> tuple[float | None, float | None]:
    if isinstance(result, ComparisonResult):
        return result.e_value, result.bound
    return result.e_value, result.evidence_bound


def _clamp(value: float) -> float | None:
    """A value a log axis can show: within [E_LOW, E_HIGH]; NaN is no value."""
    if math.isnan(value):
        return None
    return min(max(value, E_LOW), E_HIGH)


def _evidence_chart(tests: dict[str, _Test], marks: _Marks) -> str:
    traces: list[go.Scatter] = []
    for index, (name, test) in enumerate(tests.items()):
        colour = PALETTE[index % len(PALETTE)]
        x = [axis_time(at) for at in test.at]
        shown = [
            f"e-value {v:.3g} of {b:.3g}" for v, b in zip(test.e_values, test.bounds, strict=True)
        ]
        traces.append(_line(x, [_clamp(v) for v in test.e_values], name, colour, text=shown))
        bound = _line(x, [_clamp(b) for b in test.bounds], f"{name} bound", colour, "dash")
        bound.update(mode="lines", showlegend=False)  # pyright: ignore[reportUnknownMemberType]
        traces.append(bound)
    yaxis = {"title": {"text": "e-value (log)"}, "type": "log", "exponentformat": "power"}
    title = "Evidence against each bound (dashed: the bound that breaches)"
    return _figure_html("chart-evidence", title, traces, marks, yaxis)
