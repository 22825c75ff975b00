"""`sluice`: start, watch, steer and undo canary deployments from a terminal."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console, RenderableType
from rich.markup import escape
from temporalio.client import Client
from temporalio.service import RPCError

from frontends.cli import render
from frontends.cli.watch import watch as watch_live
from frontends.cli.watch import watch_json
from frontends.client import lines
from frontends.client.deployments import live_check, start_deployment
from frontends.client.history import DeploymentRecord, checked_service, latest, list_deployments
from frontends.client.operations import backups as list_backups
from frontends.client.operations import (
    control,
    current,
    ensure_worker,
    json_data,
    preflight,
    restore,
    rollback,
    snapshot,
)
from sluicegate.contracts import (
    Action,
    ControlInput,
    DeploymentResult,
    PromoteInput,
)
from sluicegate.errors import (
    ControlRefused,
    DeploymentAlreadyRunning,
    DeploymentNotFound,
    SluicegateError,
)
from sluicegate.settings import CONFIG_ENV, Settings, SettingsError, load_settings
from sluicegate.spec import DeploymentSpec, load_spec, workflow_id_for
from workers.client import connect


class Exit(IntEnum):
    """Exit codes, the same for every command."""

    OK = 0  # done; promoted; healthy; every check passed
    ROLLED_BACK = 1  # the deployment was rolled back; unhealthy; a pre-deployment check failed
    ERROR = 2  # bad input or settings, Temporal unreachable, no worker, unexpected failure
    REFUSED = 3  # the deployment refused the control, or there is nothing to act on
    NOT_FOUND = 4  # no such service deployment or backup


EXIT_CODES_HELP = (
    "Exit codes: 0 ok or promoted, 1 rolled back / unhealthy / a check failed, "
    "2 error (bad input, settings, Temporal unreachable, no worker), 3 refused, 4 not found."
)
app = typer.Typer(
    name="sluice",
    help="Progressive (canary) deployments as durable Temporal workflows.\n\n"
    "Settings come from SLUICEGATE_* environment variables and the TOML file in "
    f"{CONFIG_ENV} (default ~/.config/sluicegate/config.toml). {EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
errors = Console(stderr=True)

Service = Annotated[
    str, typer.Argument(help="The service, as named in its spec.", show_default=False)
]
SpecFile = Annotated[
    Path,
    typer.Argument(help="Deployment spec, YAML or JSON (see docs/SPEC.md).", show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


def _recordable(reason: str) -> str:
    try:
        ControlInput(reason=reason)
    except ValidationError as err:
        raise typer.BadParameter(err.errors()[0]["msg"]) from None
    return reason


Reason = Annotated[
    str,
    typer.Option("--reason", "-r", help="Why; recorded with your name.", callback=_recordable),
]
SpecOption = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="Take the router and backup location from this spec file instead of the "
        "service's latest deployment.",
    ),
]


@dataclass
class Overrides:
    config: Path | None = None
    address: str | None = None
    namespace: str | None = None
    task_queue: str | None = None


@dataclass
class Session:
    client: Client
    settings: Settings
    by: str


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help=f"Settings file (TOML); overrides {CONFIG_ENV}.")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Temporal host:port (SLUICEGATE_TEMPORAL_ADDRESS).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Temporal namespace (SLUICEGATE_NAMESPACE).")
    ] = None,
    task_queue: Annotated[
        str | None, typer.Option(help="Worker task queue (SLUICEGATE_TASK_QUEUE).")
    ] = None,
) -> None:
    ctx.obj = Overrides(config, address, namespace, task_queue)


def operator() -> str:
    """Who is at the keyboard, as recorded with every control: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def settings_from(overrides: Overrides) -> Settings:
    if overrides.config is not None:
        os.environ[CONFIG_ENV] = str(overrides.config)
    return load_settings(
        temporal_address=overrides.address,
        namespace=overrides.namespace,
        task_queue=overrides.task_queue,
    )


def run(ctx: typer.Context, work: Callable[[Session], Awaitable[int | None]]) -> None:
    """Connect, do `work`, and leave with its exit code (errors are handled by `entry`)."""
    code = asyncio.run(_connected(ctx.obj, work))
    raise typer.Exit(code)


async def _connected(overrides: Overrides, work: Callable[[Session], Awaitable[int | None]]) -> int:
    settings = settings_from(overrides)
    by = operator()
    client = await connect(settings, identity=f"sluice {by}")
    return await work(Session(client, settings, by)) or Exit.OK


def classify(err: SluicegateError | RPCError) -> tuple[Exit, str]:
    """The exit code and label for an error a command could not get past."""
    if isinstance(err, ControlRefused | DeploymentAlreadyRunning):
        return Exit.REFUSED, "[bold yellow]refused[/]"
    if isinstance(err, DeploymentNotFound):
        return Exit.NOT_FOUND, "[bold yellow]not found[/]"
    return Exit.ERROR, "[bold red]error[/]"


def entry() -> None:
    """The `sluice` command: every known error becomes one line and its exit code."""
    try:
        app()
        code: int = Exit.OK
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else Exit.ERROR if done.code else Exit.OK
    except (SluicegateError, RPCError) as err:
        code, label = classify(err)
        message = f"Temporal said: {err.message}" if isinstance(err, RPCError) else str(err)
        errors.print(f"{label}: {escape(message)}", highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        code = 130
    # Skip interpreter teardown: the SDK's native threads can abort it (exit 134) after
    # the work is done, which would turn a correct exit code into a crash.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def print_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = json_data(data)
    elif isinstance(data, list):
        data = [json_data(item) for item in data]
    print(json.dumps(data, indent=2))


def show(data: Any, as_json: bool, *human: RenderableType) -> None:
    """JSON on stdout for scripts, else the human rendering, one part after another."""
    if as_json:
        print_json(data)
        return
    for part in human:
        console.print(part, highlight=False, soft_wrap=isinstance(part, str))


def read_spec(path: Path | None) -> DeploymentSpec | None:
    return None if path is None else load_spec(path)


# -- deploying and watching ----------------------------------------------------------------


@app.command()
def deploy(
    ctx: typer.Context,
    spec_file: SpecFile,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow it until it ends.")] = False,
    as_json: Json = False,
) -> None:
    """Validate SPEC and start its deployment; print the workflow id and Web UI link.

    Example: [bold]sluice deploy deploy/examples/checkout.yaml --watch[/]
    """
    spec = load_spec(spec_file)  # outside `run`: a bad spec needs no Temporal

    async def work(session: Session) -> int:
        try:
            await ensure_worker(session.client, session.settings.task_queue)
        except SluicegateError as err:
            errors.print(f"[yellow]warning[/]: {err}; the deployment waits for one")
        handle = await start_deployment(session.client, spec, session.settings.task_queue)
        link = session.settings.workflow_link(handle.id, handle.result_run_id)
        show(
            {"workflow_id": handle.id, "run_id": handle.result_run_id, "url": link},
            as_json,
            f"started {handle.id} (run {handle.result_run_id})",
            f"Web UI: {link}",
        )
        if not watch:
            return Exit.OK
        if as_json:
            return await watch_json(session.client, spec.service)
        return await watch_live(session.client, spec.service, console)

    run(ctx, work)


@app.command()
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


@app.command()
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
            console.print(f"Web UI: {session.settings.workflow_link(workflow_id)}")
        return Exit.OK

    run(ctx, work)


@app.command()
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


@app.command()
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


@app.command()
def abort(
    ctx: typer.Context,
    service: Service,
    reason: Annotated[
        str,
        typer.Option("--reason", "-r", help="Why; recorded with your name.", callback=_recordable),
    ],
    as_json: Json = False,
) -> None:
    """Stop SERVICE's deployment and restore its backup (100% stable).

    Example: [bold]sluice abort checkout --reason "support tickets about checkout"[/]
    """
    _control(ctx, service, "abort", ControlInput(reason=reason), as_json)


@app.command()
def pause(ctx: typer.Context, service: Service, reason: Reason = "", as_json: Json = False) -> None:
    """Freeze the bake timer; traffic stays where it is and health checks go on.

    Example: [bold]sluice pause checkout -r "waiting for the batch job"[/]
    """
    _control(ctx, service, "pause", ControlInput(reason=reason), as_json)


@app.command()
def resume(
    ctx: typer.Context, service: Service, reason: Reason = "", as_json: Json = False
) -> None:
    """Resume a paused deployment; the bake continues where it stopped.

    Example: [bold]sluice resume checkout[/]
    """
    _control(ctx, service, "resume", ControlInput(reason=reason), as_json)


@app.command("rollback")
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
        request = ControlInput(by=session.by, reason=reason or "rollback requested")
        result = await rollback(session.client, session.settings.task_queue, service, request)
        if isinstance(result, DeploymentResult):
            show(result, as_json, render.result_line(result))
        else:
            show(result, as_json, *render.restore_lines(result))
        return Exit.OK

    run(ctx, work)


# -- backups -------------------------------------------------------------------------------


@app.command()
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


@app.command()
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


@app.command("restore")
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


# -- before deploying ----------------------------------------------------------------------


@app.command()
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


@app.command("test")
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


Check = tuple[str, bool | None, str]


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


# -- processes -----------------------------------------------------------------------------


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def worker(
    ctx: typer.Context,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(help="info: a line per deployment event and error; debug adds HTTP requests."),
    ] = None,
    log_format: Annotated[
        LogFormat | None, typer.Option(help="text, or json: one object per line for log pipelines.")
    ] = None,
) -> None:
    """Run a Sluicegate worker: deployments and their activities, until Ctrl-C.

    It needs to reach Temporal, the routers, the metric sources and the backup directory.
    It logs to stderr one line per deployment event (started, stage, breach, rollback,
    promotion) and per error; the defaults come from the settings log_level and log_format
    (SLUICEGATE_LOG_LEVEL, SLUICEGATE_LOG_FORMAT).

    Example: [bold]SLUICEGATE_TEMPORAL_ADDRESS=temporal:7233 sluice worker --log-format json[/]
    """
    from workers.logs import configure_logging
    from workers.main import run as run_worker

    settings = settings_from(ctx.obj)
    configure_logging(
        log_level.value if log_level else settings.log_level,
        log_format.value if log_format else settings.log_format,
    )
    asyncio.run(run_worker(settings))


@app.command()
def chatops(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
) -> None:
    """Serve chat-ops: Slack's /deploy command and buttons, and the HTTP control API.

    Needs [chatops] settings: a Slack signing secret and/or API tokens (docs/CHATOPS.md).
    Serves until Ctrl-C or SIGTERM.

    Example: [bold]SLUICEGATE_CHATOPS__SIGNING_SECRET=... sluice chatops --port 3000[/]
    """
    from frontends.chatops.server import serve
    from workers.logs import configure_logging

    settings = settings_from(ctx.obj)
    if not (settings.chatops.serves_slack or settings.chatops.serves_api):
        raise SettingsError(
            "chat-ops has nothing to serve: set chatops.signing_secret (env "
            "SLUICEGATE_CHATOPS__SIGNING_SECRET) for Slack and/or add [[chatops.tokens]] "
            "for the HTTP API; see docs/CHATOPS.md"
        )
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, host, port))


@app.command("chatops-token")
def chatops_token(
    name: Annotated[str, typer.Argument(help="Who will use it, e.g. ci.", show_default=False)],
    services: Annotated[
        list[str] | None, typer.Option("--service", help="A service it may act on (repeat); * all.")
    ] = None,
    actions: Annotated[
        list[str] | None,
        typer.Option("--action", help="An action it may take (repeat); * all. Default: status."),
    ] = None,
) -> None:
    """Make a new API token for `sluice chatops`: print it once, and the settings to add.

    Only the token's sha256 goes into the settings; the token itself is stored nowhere.

    Example: [bold]sluice chatops-token ci --service checkout --action status --action promote[/]
    """
    import secrets

    from frontends.chatops.access import token_digest
    from sluicegate.chatops_settings import ACTIONS, ApiToken, ChatAction

    known = (*ACTIONS, "*")
    if bad := [action for action in actions or () if action not in known]:
        raise SluicegateError(f"--action {bad[0]!r}: valid are {', '.join(known)}")
    token = "sgt_" + secrets.token_urlsafe(32)
    try:
        entry = ApiToken(
            name=name,
            sha256=token_digest(token),
            services=tuple(services or ["*"]),
            actions=tuple(cast(list[ChatAction], actions or ["status"])),
        )
    except ValidationError as err:
        problem = err.errors()[0]
        where = {"name": "NAME", "services": "--service"}.get(str(problem["loc"][0]), "")
        raise SluicegateError(f"{where}: {problem['msg'].removeprefix('Value error, ')}") from None
    print(f"token (shown once; give it to {name}): {token}")
    print("add to the settings file:\n")
    print("[[chatops.tokens]]")
    print(f"name = {json.dumps(entry.name)}")
    print(f'sha256 = "{entry.sha256}"')
    print(f"services = {json.dumps(list(entry.services))}")
    print(f"actions = {json.dumps(list(entry.actions))}")
