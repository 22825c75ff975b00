"""`sluice health` and `sluice test`: try a spec against the live system before deploying."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from temporalio.client import Client

from frontends.cli import render
from frontends.cli.session import (
    Exit,
    Json,
    Overrides,
    Session,
    SpecFile,
    console,
    operator,
    print_json,
    run,
    settings_from,
    show,
)
from frontends.client.history import latest
from frontends.client.operations import ensure_worker, json_data, preflight
from sluicegate.errors import DeploymentNotFound, SluicegateError
from sluicegate.spec import DeploymentSpec, load_spec
from workers.client import connect

commands = typer.Typer()
Check = tuple[str, bool | None, str]


@commands.command()
def health(ctx: typer.Context, spec_file: SpecFile, as_json: Json = False) -> None:
    """One health check now: the spec's thresholds against the live metric source.

    Samples twice, one check interval apart, and judges both versions' traffic.
    Exit 0 unless a metric breaches (1).

    Example: [bold]sluice health deploy/examples/checkout.yaml[/]
    """
    spec = load_spec(spec_file)

    async def work(session: Session) -> int:
        report = await preflight(session.client, session.settings.task_queue, spec)
        data = {"overall": render.overall(report), **json_data(report)}
        show(data, as_json, render.health_tables(report, spec.service))
        if report.canary is None:
            return Exit.ERROR
        return Exit.ROLLED_BACK if render.overall(report) == "breach" else Exit.OK

    run(ctx, work)


@commands.command("test")
def test_command(ctx: typer.Context, spec_file: SpecFile, as_json: Json = False) -> None:
    """Dry run: would a deployment of SPEC work right now? Prints a checklist.

    Checks the spec, Temporal, a worker on the task queue, that no deployment of the
    service runs, the router, the metric source (data for the stable version) and the
    backup location. Exit 1 naming what failed.

    Example: [bold]sluice test deploy/examples/checkout.yaml[/]
    """
    checks = asyncio.run(_pre_deployment_checks(ctx.obj, spec_file))
    failed = [name for name, ok, _ in checks if ok is False]
    if as_json:
        print_json(
            {
                "ok": not failed,
                "checks": [dict(zip(("name", "ok", "detail"), c, strict=True)) for c in checks],
            }
        )
    else:
        console.print(render.checklist(checks))
        console.print(
            f"[bold red]failed[/]: {', '.join(failed)}" if failed else "[green]ready to deploy[/]"
        )
    raise typer.Exit(Exit.ROLLED_BACK if failed else Exit.OK)


async def _pre_deployment_checks(overrides: Overrides, spec_file: Path) -> list[Check]:
    """Each check in order; once one fails, those that need it are marked not checked."""
    checks: list[Check] = []

    def skipped(*names: str) -> list[Check]:
        return checks + [(name, None, "not checked") for name in names]

    later = ("temporal", "worker", "no running deployment", "router", "metrics", "backup")
    try:
        spec = load_spec(spec_file)
        checks.append(
            ("spec", True, f"{spec.service}: {spec.stable.version} → {spec.canary.version}")
        )
    except SluicegateError as err:
        return [("spec", False, str(err)), *skipped(*later)]
    try:
        settings = settings_from(overrides)
        client = await connect(settings, identity=f"sluice {operator()}")
        checks.append(
            ("temporal", True, f"{settings.temporal_address}, namespace {settings.namespace}")
        )
    except SluicegateError as err:
        checks.append(("temporal", False, str(err)))
        return skipped(*later[1:])
    try:
        await ensure_worker(client, settings.task_queue)
        checks.append(("worker", True, f"polling task queue {settings.task_queue}"))
    except SluicegateError as err:
        checks.append(("worker", False, str(err)))
        checks += await _running_check(client, spec)
        return skipped("router", "metrics", "backup")
    checks += await _running_check(client, spec)
    report = await preflight(client, settings.task_queue, spec)
    checks += [render.finding_row(finding) for finding in report.findings]
    return checks + render.stable_rows(report, spec.analysis)


async def _running_check(client: Client, spec: DeploymentSpec) -> list[Check]:
    try:
        record = await latest(client, spec.service)
    except DeploymentNotFound:
        return [("no running deployment", True, f"{spec.service} has never been deployed")]
    if record.status == "Running":
        return [("no running deployment", False, f"{record.kind} {record.workflow_id} is running")]
    return [("no running deployment", True, f"latest ended {record.outcome or record.status}")]
