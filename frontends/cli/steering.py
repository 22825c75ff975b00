"""`sluice deploy`, `watch`, `status`, `history`: start and follow deployments; `promote`,
`abort`, `pause`, `resume`: steer the running one."""

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
    SpecFile,
    console,
    errors,
    print_json,
    recordable,
    run,
    show,
)
from frontends.cli.watch import watch as watch_live
from frontends.cli.watch import watch_json
from frontends.client import lines
from frontends.client.deployments import (
    live_check,
    start_deployment,
    supersede_deployment,
    superseded,
)
from frontends.client.history import DeploymentRecord, checked_service, list_deployments
from frontends.client.operations import control, current, default_reason, ensure_worker, json_data
from sluicegate.contracts import Action, ControlInput, PromoteInput, SupersedeInput, SupersedeResult
from sluicegate.errors import DeploymentNotFound, SluicegateError
from sluicegate.spec import DeploymentSpec, load_spec, workflow_id_for

commands = typer.Typer()


# -- deploying and watching ----------------------------------------------------------------


SUPERSEDE_HELP = (
    "If a deployment of the service is running, abort it (recorded with your name and the "
    "reason 'superseded by <canary version>'), wait until its rollback has restored the "
    "backup, then start this one; with nothing running, start at once. Runs as the "
    "SupersedeDeployment workflow supersede-<service>; a second one is refused while it runs. "
    "A deployment already promoting or rolling back ignores the abort: it is waited for, and "
    "this one starts from where it ended. Ctrl-C stops the waiting here, not the supersede."
)


@commands.command()
def deploy(
    ctx: typer.Context,
    spec_file: SpecFile,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends.")] = False,
    supersede: Annotated[bool, typer.Option("--supersede", help=SUPERSEDE_HELP)] = False,
    as_json: Json = False,
) -> None:
    """Validate SPEC and start its deployment; print the workflow id and Web UI link.

    Refused while a deployment of the service runs, unless --supersede: then the running
    one is aborted and rolled back first.

    Examples: [bold]sluice deploy deploy/examples/checkout.yaml --watch[/]   [bold]sluice deploy
    checkout-v3.yaml --supersede[/]
    """
    spec = load_spec(spec_file)  # outside `run`: a bad spec needs no Temporal

    async def work(session: Session) -> int:
        waits = "the supersede waits for one" if supersede else "the deployment waits for one"
        try:
            await ensure_worker(session.client, session.settings.task_queue)
        except SluicegateError as err:
            errors.print(f"[yellow]warning[/]: {err}; {waits}")
        replaced: SupersedeResult | None = None
        if supersede:
            replaced = await _supersede(session, spec, as_json)
            workflow_id, run_id = spec.workflow_id, replaced.run_id
        else:
            handle = await start_deployment(session.client, spec, session.settings.task_queue)
            workflow_id, run_id = handle.id, handle.result_run_id
        link = session.settings.workflow_link(workflow_id, run_id)
        started = {"workflow_id": workflow_id, "run_id": run_id, "url": link}
        if replaced is not None:
            started["supersede"] = json_data(replaced)
        show(started, as_json, f"started {workflow_id} (run {run_id})", f"Web UI: {link}")
        if not watch:
            return Exit.OK
        if as_json:
            return await watch_json(session.client, spec.service)
        return await watch_live(session.client, spec.service, console)

    run(ctx, work)


async def _supersede(session: Session, spec: DeploymentSpec, as_json: bool) -> SupersedeResult:
    """Start the supersede and wait until it has started the new deployment."""
    request = SupersedeInput(by=session.by)
    handle = await supersede_deployment(session.client, spec, session.settings.task_queue, request)
    if not as_json:
        console.print(
            f"superseding: {handle.id} (run {handle.result_run_id}) aborts the running "
            f"deployment of {spec.service}, if any, and starts {spec.canary.version} once it "
            f"has rolled back; Web UI: {session.settings.workflow_link(handle.id)}",
            highlight=False,
            soft_wrap=True,
        )
    result = await superseded(handle)
    if not as_json:
        console.print(lines.superseded_line(result), highlight=False, soft_wrap=True)
    return result


@commands.command()
def watch(ctx: typer.Context, service: Service, as_json: Json = False) -> None:
    """Follow SERVICE's deployment live until it ends: stage, weight, bake, latest check.

    Exit code 0 when promoted, 1 when rolled back, 2 on error.
    With --json, one JSON object per line for each change, then the result.

    Example: [bold]sluice watch checkout[/]
    """
    checked_service(service)

    async def work(session: Session) -> int:
        if as_json:
            return await watch_json(session.client, service)
        return await watch_live(session.client, service, console)

    run(ctx, work)


@commands.command()
def status(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Argument(help="One service: its full status.", show_default=False)
    ] = None,
    as_json: Json = False,
) -> None:
    """Running deployments as a table; with SERVICE, that deployment's full status.

    Examples: [bold]sluice status[/]   [bold]sluice status checkout --json[/]
    """
    if service is not None:
        checked_service(service)  # a bad name needs no Temporal

    async def work(session: Session) -> int:
        if service is None:
            records = await list_deployments(session.client, running=True, limit=200)
            show(records, as_json, render.running_table(records) if records else "nothing running")
            return Exit.OK
        state = await current(session.client, service)
        if isinstance(state, DeploymentRecord):
            show(state, as_json, lines.ended_line(state))
            return Exit.OK
        if as_json:
            print_json(state)
        else:
            workflow_id = workflow_id_for(service)
            check = await live_check(session.client, workflow_id)
            console.print(render.status_view(state, check))
            for control_record in state.controls:
                console.print(f"operator: {lines.control_line(control_record)}")
            for hook in state.hooks:
                for line in lines.hook_lines(hook):
                    console.print(line, soft_wrap=True, markup=False, highlight=False)
            console.print(f"Web UI: {session.settings.workflow_link(workflow_id)}")
        return Exit.OK

    run(ctx, work)


@commands.command()
def history(
    ctx: typer.Context,
    service: Service,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: Json = False,
) -> None:
    """Past deployments of SERVICE: when, versions, outcome, duration, who acted and why.

    Example: [bold]sluice history checkout --limit 5[/]
    """
    checked_service(service)

    async def work(session: Session) -> int:
        records = await list_deployments(session.client, service, limit=limit)
        if not records:
            raise DeploymentNotFound(f"no deployments of {service!r} in Temporal's visibility")
        show(records, as_json, render.history_table(records, service))
        return Exit.OK

    run(ctx, work)


# -- steering the running deployment -------------------------------------------------------


def _control(
    ctx: typer.Context, service: str, action: Action, request: ControlInput, as_json: bool
) -> None:
    checked_service(service)

    async def work(session: Session) -> int:
        signed = request.model_copy(update={"by": session.by})
        current = await control(session.client, service, action, signed)
        show(current, as_json, f"{action}: accepted", lines.status_line(current))
        return Exit.OK

    run(ctx, work)


@commands.command()
def promote(
    ctx: typer.Context,
    service: Service,
    full: Annotated[
        bool, typer.Option("--full", help="Skip the remaining stages: straight to 100%.")
    ] = False,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """End the current stage's bake (or pass its manual gate) now; --full goes to 100%.

    Example: [bold]sluice promote checkout --reason "error budget fine"[/]
    """
    _control(ctx, service, "promote", PromoteInput(full=full, reason=reason), as_json)


@commands.command()
def abort(
    ctx: typer.Context,
    service: Service,
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", help="Why; recorded with your name.", callback=recordable),
    ],
    as_json: Json = False,
) -> None:
    """Stop SERVICE's deployment and restore its backup (100% stable).

    Example: [bold]sluice abort checkout --reason "support tickets about checkout"[/]
    """
    request = ControlInput(reason=reason or default_reason("abort", ORIGIN))
    _control(ctx, service, "abort", request, as_json)


@commands.command()
def pause(ctx: typer.Context, service: Service, reason: Reason = "", as_json: Json = False) -> None:
    """Freeze the bake timer; traffic stays where it is and health checks go on.

    Example: [bold]sluice pause checkout -r "waiting for the batch job"[/]
    """
    _control(ctx, service, "pause", ControlInput(reason=reason), as_json)


@commands.command()
def resume(
    ctx: typer.Context, service: Service, reason: Reason = "", as_json: Json = False
) -> None:
    """Resume a paused deployment; the bake continues where it stopped.

    Example: [bold]sluice resume checkout[/]
    """
    _control(ctx, service, "resume", ControlInput(reason=reason), as_json)
