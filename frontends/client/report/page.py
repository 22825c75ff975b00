"""One deployment's evidence as a single HTML page that opens offline: a header with the
outcome and why, four charts (traffic, error rate, latency, evidence against each bound)
marked with stages, controls, drift and the breach, the tables of events and checks, and a
warning when the store could not keep everything.

Plotly's JavaScript is inlined once; the page loads nothing from the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from plotly.offline import get_plotlyjs  # pyright: ignore[reportMissingTypeStubs]

from frontends.client.report.charts import charts
from frontends.client.report.words import cell_time, clock, number, share, when
from sluicegate.describe import span
from sluicegate.evidence import ArmNumbers, CheckRecord, DeploymentEvidence, EventRecord

OUTCOME_COLOURS = {
    "promoted": "#1a7f37",
    "rolled_back": "#cf222e",
    "not_started": "#6e7781",
    "running": "#0969da",
}


def report_page(evidence: DeploymentEvidence, link: str | None = None) -> str:
    """The whole HTML document of one deployment's report."""
    summary = evidence.summary
    title = f"{summary.service} {summary.stable_version} → {summary.canary_version}"
    body = "\n".join(
        [
            _header(evidence, link),
            _gap_warning(evidence),
            charts(evidence),
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


# -- header and warnings ------------------------------------------------------------------


def _header(evidence: DeploymentEvidence, link: str | None) -> str:
    """Service, versions, outcome, times, plan, and why it rolled back."""
    summary = evidence.summary
    colour = OUTCOME_COLOURS.get(summary.outcome, "#6e7781")
    duration = span(summary.duration) if summary.duration is not None else "still running"
    facts = [
        ("started", when(summary.started_at)),
        ("ended", when(summary.ended_at)),
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
            f"<p>Check {breach.number} of stage {escape(breach.stage)} at {clock(breach.at)} "
            f"UTC ({breach.canary_weight}% canary) breached:</p><ul>{lines}</ul>"
        )
    if summary.detected_at is not None and summary.restored_at is not None:
        restore = span(summary.time_to_restore) if summary.time_to_restore is not None else "-"
        parts.append(
            f"<p>Detected at {clock(summary.detected_at)} UTC, restored at "
            f"{clock(summary.restored_at)} UTC ({restore}).</p>"
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
        cells = [cell_time(event.at), escape(event.kind), escape(event.stage or "-"), weight]
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
            cell_time(check.at),
            f"{check.canary_weight}%",
            escape(check.status) + (" (rollback)" if check.rollback else ""),
            _arm(check.canary),
            _arm(check.stable),
            number(check.canary.p99_ms if check.canary else None),
            number(check.stable.p99_ms if check.stable else None),
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
    return f"{arm.errors:,} / {arm.requests:,} ({share(arm.error_rate)})"


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
