"""`sluice worker` and `sluice chatops`: the long-running processes; `sluice chatops-token`
makes the chat-ops API's tokens."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Annotated, cast

import typer
from pydantic import ValidationError

from frontends.cli.session import settings_from
from sluicegate.errors import SluicegateError
from sluicegate.settings import SettingsError

commands = typer.Typer()


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


@commands.command()
def worker(
    ctx: typer.Context,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(help="info: a line per deployment event and error; debug adds HTTP requests."),
    ] = None,
    log_format: Annotated[
        LogFormat | None, typer.Option(help="text, or json: one object per line for log pipelines.")
    ] = None,
    metrics_address: Annotated[
        str | None,
        typer.Option(
            help="Serve Prometheus metrics at http://IP:PORT/metrics (setting metrics_address).",
            metavar="IP:PORT",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a Sluicegate worker: deployments and their activities, until Ctrl-C.

    It needs to reach Temporal, the routers, the metric sources and the backup directory.
    It logs to stderr one line per deployment event (started, stage, breach, rollback,
    promotion) and per error; the defaults come from the settings log_level and log_format
    (SLUICEGATE_LOG_LEVEL, SLUICEGATE_LOG_FORMAT). With --metrics-address (or
    SLUICEGATE_METRICS_ADDRESS) it serves its Prometheus metrics (docs/OBSERVABILITY.md).

    Example: [bold]SLUICEGATE_TEMPORAL_ADDRESS=temporal:7233 sluice worker --log-format json[/]
    """
    from workers.logs import configure_logging
    from workers.main import run as run_worker

    settings = settings_from(ctx.obj, metrics_address=metrics_address)
    configure_logging(
        log_level.value if log_level else settings.log_level,
        log_format.value if log_format else settings.log_format,
    )
    asyncio.run(run_worker(settings))


@commands.command()
def chatops(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
) -> None:
    """Serve chat-ops: Slack's /deploy command and buttons, and the HTTP control API.

    Needs \\[chatops] settings: a Slack signing secret and/or API tokens (docs/CHATOPS.md).
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


@commands.command("chatops-token")
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
