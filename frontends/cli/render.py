"""How the CLI shows things: rich tables and one-line summaries, never any I/O of its own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from frontends.client.history import DeploymentRecord
from frontends.client.lines import ago, control_line, human, status_line, versions, when
from sluicegate.analysis.verdict import ComparisonResult, MetricResult, Verdict, percent
from sluicegate.contracts import (
    BackupEntry,
    BackupRecord,
    BakeClock,
    CheckReport,
    DeploymentResult,
    DeploymentStatus,
    Finding,
    PreflightReport,
    RestoreResult,
)
from sluicegate.describe import watched_line
from sluicegate.evidence import trend_lines
from sluicegate.spec import AnalysisSpec

STATUS_STYLE = {"healthy": "green", "breach": "bold red", "inconclusive": "yellow"}
OUTCOME_STYLE = {
    "promoted": "green",
    "restored": "green",
    "rolled_back": "bold red",
    "not_started": "yellow",
}


def running_table(records: Iterable[DeploymentRecord]) -> Table:
    table = Table("service", "versions", "phase", "weight", "started", "by", title="Running")
    for record in records:
        weight = "-" if record.canary_weight is None else f"{record.canary_weight}%"
        table.add_row(
            record.service,
            versions(record),
            record.phase or "?",
            weight,
            ago(record.started_at),
            record.started_by or "-",
        )
    return table


def history_table(records: Iterable[DeploymentRecord], service: str) -> Table:
    table = Table(
        "started", "versions", "outcome", "duration", "by", "controls and reason",
        title=f"Deployments of {service}, newest first",
    )  # fmt: skip
    for record in records:
        outcome = record.outcome or record.phase or record.status
        duration = human(record.duration) if record.duration else "running"
        notes = [control_line(control) for control in record.controls]
        if record.reason:
            notes.append(record.reason)
        table.add_row(
            when(record.started_at),
            versions(record),
            Text(outcome, style=OUTCOME_STYLE.get(outcome, "")),
            duration,
            record.started_by or "-",
            "\n".join(notes) or "-",
        )
    return table


def bake_bar(bake: BakeClock, now: datetime | None = None) -> RenderableType:
    """The bake as a progress bar with the time left (frozen while paused)."""
    if bake.ends_at is not None:
        left = max(bake.ends_at - (now or datetime.now(UTC)), timedelta(0))
        label = f"bake: {human(left)} left of {human(bake.total)}"
    else:
        left = bake.left
        label = f"bake paused: {human(left)} left of {human(bake.total)}"
    total = max(bake.total.total_seconds(), 0.001)
    done = total - min(left.total_seconds(), total)
    if watched := watched_line(bake, left):
        label += f"; {watched}"
    table = Table.grid(padding=(0, 1))
    table.add_row(ProgressBar(total=total, completed=done, width=40), Text(label))
    return table


def check_table(check: CheckReport) -> Table:
    title = f"check {check.number} at {check.at.astimezone(UTC):%H:%M:%S}: "
    table = verdict_table(check.verdict, title + check.verdict.status)
    for comparison in check.verdict.comparisons:
        table.add_row(*comparison_row(comparison), verdict_text(comparison))
    if check.drift:
        table.caption = f"router drift: {check.drift}"
    return table


def comparison_row(c: ComparisonResult) -> tuple[str, str, str, str, str]:
    """A comparison in the columns of a check table: the counts against stable's."""
    name = f"{c.metric} vs stable" + (f" (> {c.slow_above_ms:g} ms)" if c.slow_above_ms else "")
    tolerated = "no worse" if c.tolerance == 1 else f"≤ {c.tolerance:g}x stable's rate"
    counts = (
        f"{c.canary_events:,} of {c.canary_requests:,} vs {c.stable_events:,} of "
        f"{c.stable_requests:,}"
    )
    return name, "stage", tolerated, counts, f"{c.canary_requests:,}"


def verdict_table(verdict: Verdict, title: str, stable: Verdict | None = None) -> Table:
    """Each metric with its threshold and verdict; with `stable`, both versions side by side
    (each value followed by its request count)."""
    if stable is None:
        table = Table("metric", "window", "threshold", "value", "requests", "verdict", title=title)
        for result in verdict.results:
            row = [result.metric, result.window, threshold(result), value(result)]
            table.add_row(*row, str(result.requests), verdict_text(result))
        return table
    table = Table("metric", "window", "threshold", "stable", "canary", "verdict", title=title)
    stable_results = {r.metric: r for r in stable.results}
    for result in verdict.results:
        other = stable_results.get(result.metric)
        row = [result.metric, result.window, threshold(result), counted(other), counted(result)]
        table.add_row(*row, verdict_text(result))
    return table


def verdict_text(result: MetricResult | ComparisonResult) -> Text:
    return Text(result.status, style=STATUS_STYLE[result.status])


def counted(result: MetricResult | None) -> str:
    """`4.16 (214 req)`: a value and the requests it was measured over."""
    if result is None:
        return "-"
    if result.kind in LIMITS:
        return value(result)
    return f"{value(result)} ({result.requests} req)"


LIMITS = ("limit", "stable_limit")


def threshold(result: MetricResult) -> str:
    """`≤ 1% failed`, `≤ 1% > 250 ms`: the share of bad requests a limit allows."""
    if result.kind in LIMITS and result.share_bound is not None:
        latency = result.metric.startswith("latency_")
        bad = f"> {result.bound:g} ms" if latency else "failed"
        return f"≤ {percent(result.share_bound)} {bad}"
    return f"{'≤' if result.direction == 'max' else '≥'} {result.bound:g}"


def value(result: MetricResult | None) -> str:
    """`3 of 412`: a limit's bad requests behind its evidence; a business metric's value."""
    if result is None or (result.value is None and result.events is None):
        return "no data"
    if result.kind in LIMITS:
        return f"{result.events or 0:,} of {result.requests:,}"
    assert result.value is not None
    return f"{result.value:.4g}"


def status_view(status: DeploymentStatus, check: CheckReport | None) -> RenderableType:
    """The live view of a running deployment: where it is, its bake, its latest check."""
    parts: list[RenderableType] = [Text(status_line(status), style="bold")]
    if status.baseline_lines:
        parts.append(Text("stable before the deployment: " + "; ".join(status.baseline_lines)))
    if status.bake is not None:
        parts.append(bake_bar(status.bake))
    if status.pending_promote is not None:
        parts.append(Text(f"promotion pending: {control_line(status.pending_promote)}"))
    shown = check or status.latest_check
    if shown is not None:
        parts.append(check_table(shown))
        if (trend := trend_lines(shown.trend)) is not None:
            canary, stable = trend
            parts.append(Text(f"trend, last {len(shown.trend)} checks:\n  {canary}\n  {stable}"))
    if status.reason:
        parts.append(Text(status.reason))
    return Group(*parts)


def result_line(result: DeploymentResult) -> Text:
    style = OUTCOME_STYLE.get(result.outcome, "")
    return Text(
        f"{result.service} {result.canary_version}: {result.outcome}: {result.reason}", style
    )


def backups_table(entries: Iterable[BackupEntry], service: str) -> Table:
    table = Table(
        "backup id", "age", "sha256", "verified", "routing", title=f"Backups of {service}"
    )
    for entry in entries:
        verified = Text("yes", "green") if entry.verified else Text(f"NO: {entry.problem}", "red")
        table.add_row(
            entry.id,
            ago(entry.created_at),
            (entry.sha256 or "-")[:12],
            verified,
            entry.state.describe() if entry.state else "-",
        )
    return table


def backup_lines(record: BackupRecord) -> list[str]:
    return [
        f"backup id: {record.path.rstrip('/').rsplit('/', 1)[-1]}",
        f"path:      {record.path}",
        f"sha256:    {record.sha256}",
        f"routing:   {record.state.describe()}",
    ]


def restore_lines(result: RestoreResult) -> list[str]:
    undo = result.undo.path.rstrip("/").rsplit("/", 1)[-1]
    return [
        f"{result.service}: restored backup {result.backup_id}",
        f"router now reads: {result.state.describe()}",
        f"to undo: sluice restore {result.service} {undo}",
    ]


def checklist(items: Iterable[tuple[str, bool | None, str]]) -> Table:
    """✓ passed, ✗ failed, - not checked (something it needs failed first)."""
    table = Table.grid(padding=(0, 1))
    for name, ok, detail in items:
        mark = {True: Text("✓", "green"), False: Text("✗", "bold red"), None: Text("-", "dim")}
        table.add_row(mark[ok], Text(name, style="bold"), Text(detail))
    return table


def finding_row(finding: Finding) -> tuple[str, bool | None, str]:
    return finding.name, finding.ok, finding.detail


Row = tuple[str, bool | None, str]


def stable_rows(report: PreflightReport, policy: AnalysisSpec) -> list[Row]:
    """Stable's live numbers against every limit, then what the spec would do with them."""
    if report.baseline is None:
        return []
    window = f"over {report.window_seconds:.1f} s"
    rows: list[Row] = [
        (f"stable vs {rule.metric}", True, f"{line} {window}")
        for rule, line in zip(policy.metrics, report.baseline.lines(policy), strict=False)
    ]
    rows += [("warning" if a.blocking else "note", not a.blocking, a.text) for a in report.warnings]
    return rows


def health_tables(report: PreflightReport, service: str) -> RenderableType:
    if report.canary is None:
        return Text(f"no health check: {report.metrics.detail}", style="red")
    title = f"{service}: one check over {report.window_seconds:.1f} s: {overall(report)}"
    return verdict_table(report.canary, title, stable=report.stable)


def overall(report: PreflightReport) -> str:
    """`breach` if either arm breaches, else the canary's verdict."""
    verdicts = [v for v in (report.canary, report.stable) if v is not None]
    if any(v.status == "breach" for v in verdicts):
        return "breach"
    return report.canary.status if report.canary else "inconclusive"
