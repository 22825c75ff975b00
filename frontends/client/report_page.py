"""One deployment's evidence as a single HTML page that opens offline: a header with the
outcome and why, four charts (traffic, error rate, latency, evidence against each bound)
marked with stages, controls, drift and the breach, the tables of events and checks, and a
warning when the store could not keep everything.

Plotly's JavaScript is inlined once; the page loads nothing from the network.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import plotly.graph_objects as go  # pyright: ignore[reportMissingTypeStubs]
from plotly.offline import get_plotlyjs  # pyright: ignore[reportMissingTypeStubs]

from sluicegate.analysis.verdict import ComparisonResult, MetricResult
from sluicegate.describe import span
from sluicegate.evidence import ArmNumbers, CheckRecord, DeploymentEvidence, EventRecord

CONTROLS = ("paused", "resumed", "promote_requested", "abort_requested")
OUTCOME_COLOURS = {
    "promoted": "#1a7f37",
    "rolled_back": "#cf222e",
    "not_started": "#6e7781",
    "running": "#0969da",
}
CANARY = "#e8590c"
STABLE = "#1c7ed6"
BREACH = "#d00000"
VERIFIED = "#2b8a3e"
PALETTE = ("#e8590c", "#1c7ed6", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5f3dc4", "#795548")
# A log axis shows e-values within this range; the hover text keeps the true value.
E_LOW, E_HIGH = 1e-6, 1e12
CHART_HEIGHT = 340

Json = dict[str, Any]  # a piece of Plotly layout: a shape, an annotation


def report_page(evidence: DeploymentEvidence, link: str | None = None) -> str:
    """The whole HTML document of one deployment's report."""
    summary = evidence.summary
    title = f"{summary.service} {summary.stable_version} → {summary.canary_version}"
    body = "\n".join(
        [
            _header(evidence, link),
            _gap_warning(evidence),
            _charts(evidence),
            _events_table(evidence.events),
            _checks_table(evidence.checks),
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{escape(title)}: deployment report</title>\n"
        f"<style>{STYLE}</style>\n<script>{get_plotlyjs()}</script>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# -- words ------------------------------------------------------------------------------


def _time(at: datetime | None) -> str:
    """`2024-05-01 10:12:03 UTC`; `-` for none."""
    return "-" if at is None else f"{_utc(at):%Y-%m-%d %H:%M:%S} UTC"


def _cell_time(at: datetime) -> str:
    """A table's time (UTC), kept on one line."""
    return f"<span class='nowrap'>{_utc(at):%Y-%m-%d %H:%M:%S}</span>"


def _clock(at: datetime) -> str:
    """`10:12:03`: a time of day in UTC."""
    return f"{_utc(at):%H:%M:%S}"


def _utc(at: datetime) -> datetime:
    """The time in UTC; a naive time is taken to be UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _axis_time(at: datetime) -> str:
    """A time as Plotly's date axis reads it, without an offset (the axis is UTC)."""
    return f"{_utc(at):%Y-%m-%d %H:%M:%S.%f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.3g}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4g}"


def _test_name(result: MetricResult | ComparisonResult) -> str:
    """`error_rate (canary)`, `stable's error_rate`, `errors vs stable`."""
    if isinstance(result, ComparisonResult):
        slow = f" >{result.slow_above_ms:g} ms" if result.slow_above_ms else ""
        return f"{result.metric}{slow} vs stable"
    slow = f" >{result.slower_than_ms:g} ms" if result.slower_than_ms else ""
    if result.kind == "stable_limit":
        return f"stable's {result.metric}{slow}"
    return f"{result.metric}{slow} (canary)"


# -- header and warnings ------------------------------------------------------------------


def _header(evidence: DeploymentEvidence, link: str | None) -> str:
    """Service, versions, outcome, times, plan, and why it rolled back."""
    summary = evidence.summary
    colour = OUTCOME_COLOURS.get(summary.outcome, "#6e7781")
    duration = span(summary.duration) if summary.duration is not None else "still running"
    facts = [
        ("started", _time(summary.started_at)),
        ("ended", _time(summary.ended_at)),
        ("duration", duration),
        ("deployment", summary.deployment_id),
    ]
    if evidence.plan:
        facts.append(("plan", evidence.plan))
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    web_ui = f"<p><a href='{escape(link)}'>Open in the Temporal Web UI</a></p>" if link else ""
    return (
        f"<header><h1>{escape(summary.service)} "
        f"<span class='versions'>{escape(summary.stable_version)} → "
        f"{escape(summary.canary_version)}</span> "
        f"<span class='outcome' style='background:{colour}'>"
        f"{escape(summary.outcome.replace('_', ' '))}</span></h1>"
        f"<table class='facts'>{rows}</table>{web_ui}</header>\n{_rollback_reason(evidence)}"
    )


def _rollback_reason(evidence: DeploymentEvidence) -> str:
    """Why it rolled back: the outcome's words, the breaching evidence, how fast."""
    summary = evidence.summary
    if summary.outcome != "rolled_back":
        return ""
    parts = [f"<h2>Why it rolled back</h2><p>{escape(summary.reason or 'no reason kept')}</p>"]
    breach = evidence.breach
    if breach is not None:
        lines = "".join(f"<li>{escape(line)}</li>" for line in breach.verdict.lines())
        parts.append(
            f"<p>Check {breach.number} of stage {escape(breach.stage)} at {_clock(breach.at)} "
            f"UTC ({breach.canary_weight}% canary) breached:</p><ul>{lines}</ul>"
        )
    if summary.detected_at is not None and summary.restored_at is not None:
        restore = span(summary.time_to_restore) if summary.time_to_restore is not None else "-"
        parts.append(
            f"<p>Detected at {_clock(summary.detected_at)} UTC, restored at "
            f"{_clock(summary.restored_at)} UTC ({restore}).</p>"
        )
    return f"<section class='reason'>{''.join(parts)}</section>"


def _gap_warning(evidence: DeploymentEvidence) -> str:
    """A visible box when the store lost checks or events of this deployment."""
    lines = [gap.describe() for gap in evidence.gaps] + list(evidence.missing_checks())
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return (
        "<section class='warning'><strong>The store could not keep everything:</strong> "
        f"this report may miss checks or events.<ul>{items}</ul></section>"
    )


# -- charts -------------------------------------------------------------------------------


def _charts(evidence: DeploymentEvidence) -> str:
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
            x = _axis_time(at)
            lines.append(_vline(x, colour, dash))
            hover = f"{text} at {_clock(at)} UTC"
            labels.append(_label(x, text, hover, colour, "right" if text == "breach" else "left"))
        return lines, labels

    def x_range(self) -> list[str]:
        """The span of the deployment with a little room either side (more on the right, for
        the last label)."""
        room = max((self.end - self.start) * 0.02, timedelta(seconds=1))
        return [_axis_time(self.start - room), _axis_time(self.end + 3 * room)]

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
        x=[_axis_time(at) for at, _ in points],
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
    x = [_axis_time(at) for at, _ in points]
    trace = _line(x, [w for _, w in points], "canary weight %", CANARY, shape="hv")
    yaxis = {"title": {"text": "canary traffic %"}, "range": [0, 105]}
    return _figure_html("chart-weight", "Canary traffic", [trace], marks, yaxis)


def _error_chart(checks: Sequence[CheckRecord], marks: _Marks) -> str:
    x = [_axis_time(c.at) for c in checks]
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
    x = [_axis_time(c.at) for c in checks]
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
            test = tests.setdefault(_test_name(result), _Test())
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
        x = [_axis_time(at) for at in test.at]
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


# -- tables -------------------------------------------------------------------------------


def _table(caption: str, heads: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    """A table of already-escaped cells; each row has a CSS class."""
    head = "".join(f"<th>{h}</th>" for h in heads)
    body = "".join(
        f"<tr class='{kind}'>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
        for kind, cells in rows
    )
    return f"<h2>{caption}</h2><table class='data'><tr>{head}</tr>{body}</table>"


def _events_table(events: Sequence[EventRecord]) -> str:
    if not events:
        return "<h2>Events</h2><p class='none'>No events were kept.</p>"
    rows: list[tuple[str, Sequence[str]]] = []
    for event in events:
        evidence = "".join(f"<li>{escape(line)}</li>" for line in event.evidence)
        summary = escape(event.summary) + (f"<ul>{evidence}</ul>" if evidence else "")
        weight = "-" if event.canary_weight is None else f"{event.canary_weight}%"
        kind = "bad" if event.kind in ("breach", "rolled_back", "rollback_failing") else ""
        cells = [_cell_time(event.at), escape(event.kind), escape(event.stage or "-"), weight]
        rows.append((kind, [*cells, escape(event.by or ""), summary]))
    heads = ("time (UTC)", "kind", "stage", "weight", "by", "summary")
    return _table("Events", heads, rows)


def _checks_table(checks: Sequence[CheckRecord]) -> str:
    if not checks:
        return "<h2>Checks</h2><p class='none'>No checks were kept.</p>"
    rows: list[tuple[str, Sequence[str]]] = []
    for check in checks:
        kind = "bad" if check.rollback else ("" if check.status == "healthy" else check.status)
        notes = [f"drift: {check.drift}"] if check.drift else []
        notes += list(check.notes)
        cells = [
            str(check.number),
            escape(check.stage),
            _cell_time(check.at),
            f"{check.canary_weight}%",
            escape(check.status) + (" (rollback)" if check.rollback else ""),
            _arm(check.canary),
            _arm(check.stable),
            _number(check.canary.p99_ms if check.canary else None),
            _number(check.stable.p99_ms if check.stable else None),
            "<br>".join(escape(note) for note in notes),
        ]
        rows.append((kind, cells))
    heads = (
        "#",
        "stage",
        "time (UTC)",
        "weight",
        "status",
        "canary errors / requests",
        "stable errors / requests",
        "canary p99 ms",
        "stable p99 ms",
        "drift / notes",
    )
    return _table("Checks", heads, rows)


def _arm(arm: ArmNumbers | None) -> str:
    """`3 / 1,200 (0.25%)`; `-` without data."""
    if arm is None:
        return "-"
    return f"{arm.errors:,} / {arm.requests:,} ({_percent(arm.error_rate)})"


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
  max-width: 1200px; padding: 0 1em; color: #212529; font-size: 15px; }
h1 { font-size: 1.6em; margin: 0 0 .4em; }
h2 { font-size: 1.2em; margin: 1.4em 0 .5em; border-bottom: 1px solid #dee2e6; }
.versions { font-weight: normal; color: #495057; }
.outcome { color: white; border-radius: 4px; padding: .1em .5em; font-size: .7em;
  vertical-align: middle; text-transform: uppercase; }
table.facts th { text-align: left; padding-right: 1em; color: #495057; font-weight: 600; }
.reason { border-left: 4px solid #cf222e; background: #fff5f5; padding: .2em 1em; }
.reason h2 { border: none; margin-top: .5em; }
.warning { border: 2px solid #f08c00; background: #fff9db; padding: .6em 1em; margin: 1em 0;
  border-radius: 4px; }
.none { color: #6e7781; font-style: italic; }
.chart { border: 1px solid #dee2e6; border-radius: 4px; margin: .8em 0; padding: .3em; }
table.data { border-collapse: collapse; width: 100%; font-size: .85em; }
table.data th, table.data td { border: 1px solid #dee2e6; padding: .25em .5em;
  text-align: left; vertical-align: top; }
table.data th { background: #f1f3f5; }
.nowrap { white-space: nowrap; }
table.data tr.bad td { background: #ffe3e3; }
table.data tr.inconclusive td { background: #fff9db; }
table.data ul { margin: .2em 0; padding-left: 1.2em; }
"""
