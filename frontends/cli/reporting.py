"""`sluice report`: one deployment's evidence (a page with charts, or text), or the DORA
figures of every deployment kept in the evidence store (docs/REPORTS.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from frontends.cli.session import Exit, Json, console, print_json, settings_from
from frontends.client.history import checked_service
from frontends.client.reports import deployment_evidence as read_evidence
from frontends.client.reports import dora_figures, page, parse_since
from sluicegate.describe import span
from sluicegate.errors import InvalidArgument
from sluicegate.evidence import DeploymentEvidence, DoraFigures, trend_lines

commands = typer.Typer()


@commands.command()
def report(
    ctx: typer.Context,
    service: Annotated[
        str | None,
        typer.Argument(help="The service; with --since, optional.", show_default=False),
    ] = None,
    run: Annotated[
        str | None,
        typer.Argument(
            help="A run id of the deployment (its start will do); default: the latest.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Write the report page (charts, opens offline) to this file; - for stdout.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="DORA figures of the deployments begun in the last 30d, 12h, 2w...",
            metavar="AGE",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """What the evidence store kept: a deployment's report, or the DORA figures.

    With SERVICE (and a RUN, default the latest): the plan and outcome, why it rolled back,
    and every check; with --html a self-contained page with charts of the canary's weight,
    errors, latency and evidence against each bound. With --since: deployments per day,
    change failure rate, time to restore, duration and lead time, per service. It reads the
    store of the setting evidence_url (SLUICEGATE_EVIDENCE_URL), not Temporal.

    Example: [bold]sluice report checkout --html checkout.html[/]

    Example: [bold]sluice report --since 30d[/]
    """
    settings = settings_from(ctx.obj)
    if since is not None:
        if run is not None:
            raise InvalidArgument("RUN: not with --since (the figures cover every deployment)")
        if service is not None:
            checked_service(service)
        figures = dora_figures(settings, parse_since(since), service)
        if as_json:
            print_json(figures)
        else:
            console.print(dora_table(figures, since))
        raise typer.Exit(Exit.OK)
    if service is None:
        raise InvalidArgument(
            "SERVICE: give a service for its deployment's report, or --since 30d for DORA figures"
        )
    checked_service(service)
    evidence = read_evidence(settings, service, run)
    if html is not None:
        text = page(settings, evidence)
        if str(html) == "-":
            sys.stdout.write(text)
        else:
            try:
                html.write_text(text, encoding="utf-8")
            except OSError as err:
                raise InvalidArgument(f"--html {html}: cannot write it: {err.strerror}") from None
            console.print(f"wrote {html}: {headline(evidence)}", soft_wrap=True, highlight=False)
    elif as_json:
        print_json(evidence)
    else:
        for line in report_lines(evidence):
            console.print(line, soft_wrap=True, highlight=False, markup=False)
    outcome = evidence.summary.outcome
    raise typer.Exit(Exit.ROLLED_BACK if outcome == "rolled_back" else Exit.OK)


def headline(evidence: DeploymentEvidence) -> str:
    s = evidence.summary
    return (
        f"{s.service} {s.stable_version} → {s.canary_version} {s.outcome}, "
        f"{len(evidence.checks)} checks, deployment {s.deployment_id}"
    )


def report_lines(evidence: DeploymentEvidence) -> list[str]:
    """The report as text: the outcome, why, the gaps, and the trend of every check."""
    s = evidence.summary
    took = f" after {span(s.duration)}" if s.duration else ""
    lines = [
        f"{s.service}: {s.stable_version} → {s.canary_version}: {s.outcome}{took}",
        f"started {s.started_at:%Y-%m-%d %H:%M:%S} UTC, deployment {s.deployment_id}",
    ]
    if evidence.plan:
        lines.append(f"plan: {evidence.plan}")
    if s.reason:
        lines.append(f"outcome: {s.reason}")
    if (breach := evidence.breach) is not None:
        lines.append(
            f"breach: check {breach.number} of stage {breach.stage} at {breach.at:%H:%M:%S}"
        )
        lines += [f"  {line}" for line in breach.verdict.lines()]
    if (restore := s.time_to_restore) is not None:
        lines.append(f"time to restore: {span(restore)} (breach detected → rollback verified)")
    for gap in evidence.gaps:
        lines.append(f"gap: {gap.describe()}")
    lines += [f"gap: {missing}" for missing in evidence.missing_checks()]
    stages = dict.fromkeys(check.stage for check in evidence.checks)
    for stage in stages:
        checks = [c for c in evidence.checks if c.stage == stage]
        failed = sum(1 for c in checks if c.status == "breach")
        lines.append(f"stage {stage}: {len(checks)} checks, {failed} breaching")
        trend = trend_lines([c.trend_point() for c in checks[-60:]])  # 60 fit a line
        if trend is not None:
            lines += [f"  {line}" for line in trend]
    lines.append(f"events: {len(evidence.events)}; the page with charts: --html FILE")
    return lines


def dora_table(figures: list[DoraFigures], since: str) -> Table | Text:
    """Restore (breach detected → rollback verified), duration and lead time are medians."""
    if not figures:
        return Text(f"no deployments in the evidence store in the last {since}")
    rows = [f.row() for f in figures]
    names = [row["service"] for row in rows]
    table = Table(
        # Service names are never cut short; headings take two lines to leave them room.
        Column("service", no_wrap=True, min_width=max(len(name) for name in names)),
        *(Column(heading.replace(" ", "\n")) for heading in list(rows[0])[1:]),
        box=box.SIMPLE_HEAD,
        title=f"DORA figures, deployments begun in the last {since} (times: medians)",
    )
    for row in rows:
        table.add_row(*row.values())
    return table
