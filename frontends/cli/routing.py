"""`sluice rollback`, `backup`, `backups`, `restore`: undo a release, and keep and put back
a service's routing."""

from __future__ import annotations

from typing import Annotated

import typer

from frontends.cli import render
from frontends.cli.session import (
    ORIGIN,
    Exit,
    Json,
    Reason,
    Service,
    Session,
    SpecOption,
    read_spec,
    run,
    show,
)
from frontends.client.history import checked_service
from frontends.client.operations import backups as list_backups
from frontends.client.operations import default_reason, restore, rollback, snapshot
from sluicegate.contracts import ControlInput, DeploymentResult

commands = typer.Typer()


@commands.command("rollback")
def rollback_command(
    ctx: typer.Context, service: Service, reason: Reason = "", as_json: Json = False
) -> None:
    """Undo SERVICE's latest release.

    While a deployment runs: abort it and wait for its rollback. After a promotion: restore
    the routing from before that deployment (straight to 100% of the previous version,
    verified by read-back), as its own RestoreRelease workflow.

    Example: [bold]sluice rollback checkout -r "latency regression in v2"[/]
    """
    checked_service(service)

    async def work(session: Session) -> int:
        request = ControlInput(by=session.by, reason=reason or default_reason("rollback", ORIGIN))
        result = await rollback(session.client, session.settings.task_queue, service, request)
        if isinstance(result, DeploymentResult):
            show(result, as_json, render.result_line(result))
        else:
            show(result, as_json, *render.restore_lines(result))
        return Exit.OK

    run(ctx, work)


@commands.command()
def backup(
    ctx: typer.Context, service: Service, spec_file: SpecOption = None, as_json: Json = False
) -> None:
    """Back up SERVICE's routing as it is now (on the worker, verified by read-back).

    Example: [bold]sluice backup checkout[/]
    """
    checked_service(service)
    spec = read_spec(spec_file)

    async def work(session: Session) -> int:
        record = await snapshot(session.client, session.settings.task_queue, service, spec)
        show(record, as_json, *render.backup_lines(record))
        return Exit.OK

    run(ctx, work)


@commands.command()
def backups(
    ctx: typer.Context, service: Service, spec_file: SpecOption = None, as_json: Json = False
) -> None:
    """List SERVICE's backups, newest first, with age and checksum, each verified.

    Example: [bold]sluice backups checkout[/]
    """
    checked_service(service)
    spec = read_spec(spec_file)

    async def work(session: Session) -> int:
        entries = await list_backups(session.client, session.settings.task_queue, service, spec)
        table = render.backups_table(entries, service)
        show(entries, as_json, table if entries else f"no backups of {service}")
        return Exit.OK

    run(ctx, work)


@commands.command("restore")
def restore_command(
    ctx: typer.Context,
    service: Service,
    backup_id: Annotated[str, typer.Argument(help="From `sluice backups`.", show_default=False)],
    reason: Reason = "",
    spec_file: SpecOption = None,
    as_json: Json = False,
) -> None:
    """Restore one of SERVICE's backups, verified, as a recorded RestoreRelease workflow.

    The routing it replaces is backed up first, so a restore can itself be undone.
    Refused while a deployment of SERVICE runs.

    Example: [bold]sluice restore checkout 3f6c0e2a-...[/]
    """
    checked_service(service)
    spec = read_spec(spec_file)

    async def work(session: Session) -> int:
        request = ControlInput(by=session.by, reason=reason)
        queue = session.settings.task_queue
        result = await restore(session.client, queue, service, backup_id, request, spec)
        show(result, as_json, *render.restore_lines(result))
        return Exit.OK

    run(ctx, work)
