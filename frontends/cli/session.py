"""What every `sluice` command shares: exit codes, settings, the Temporal session, output,
and the arguments and options several commands take."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Annotated

import typer
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from rich.console import Console, RenderableType
from temporalio.client import Client

from frontends.client.operations import fitted, json_data
from sluicegate.contracts import MAX_BY, ControlInput
from sluicegate.settings import CONFIG_ENV, Settings, load_settings
from sluicegate.spec import DeploymentSpec, load_spec
from workers.client import connect
from workers.telemetry import CLI, configure_tracing


class Exit(IntEnum):
    """Exit codes, the same for every command."""

    OK = 0  # done; promoted; healthy; every check passed
    ROLLED_BACK = 1  # the deployment was rolled back; unhealthy; a pre-deployment check failed
    ERROR = 2  # bad input or settings, Temporal unreachable, no worker, unexpected failure
    REFUSED = 3  # the deployment refused the control, or there is nothing to act on
    NOT_FOUND = 4  # no such service deployment or backup


console = Console()
errors = Console(stderr=True)
ORIGIN = "the CLI"  # where a control came from, in default reasons: "rolled back from the CLI"

Service = Annotated[
    str, typer.Argument(help="The service, as named in its spec.", show_default=False)
]
SpecFile = Annotated[
    Path,
    typer.Argument(help="Deployment spec, YAML or JSON (see docs/SPEC.md).", show_default=False),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


def recordable(reason: str) -> str:
    """The reason if a control can record it (its length), else a usage error naming why."""
    try:
        ControlInput(reason=reason)
    except ValidationError as err:
        raise typer.BadParameter(err.errors()[0]["msg"]) from None
    return reason


Reason = Annotated[
    str,
    typer.Option("--reason", "-r", help="Why; recorded with your name.", callback=recordable),
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


def operator() -> str:
    """Who is at the keyboard, as recorded with every control: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return fitted(f"{user}@{socket.gethostname()}", MAX_BY)


def settings_from(overrides: Overrides, **more: object) -> Settings:
    """The settings, with the global options and a command's own (`more`) over them."""
    if overrides.config is not None:
        os.environ[CONFIG_ENV] = str(overrides.config)
    return load_settings(
        temporal_address=overrides.address,
        namespace=overrides.namespace,
        task_queue=overrides.task_queue,
        **more,
    )


def run(ctx: typer.Context, work: Callable[[Session], Awaitable[int | None]]) -> None:
    """Connect, do `work`, and leave with its exit code (errors are handled by `entry`).

    With tracing on, the command is one span ("sluice deploy"), the parent of the Temporal
    client's spans: a deployment's trace starts at the command that started it."""
    configure_tracing(CLI)
    with trace.get_tracer(__name__).start_as_current_span(
        ctx.command_path, kind=trace.SpanKind.CLIENT
    ) as span:
        code = asyncio.run(_connected(ctx.obj, work))
        span.set_attribute("sluicegate.exit_code", code)
    raise typer.Exit(code)


async def _connected(overrides: Overrides, work: Callable[[Session], Awaitable[int | None]]) -> int:
    settings = settings_from(overrides)
    by = operator()
    client = await connect(settings, identity=f"sluice {by}")
    return await work(Session(client, settings, by)) or Exit.OK


# What a command prints with --json: a model, a list of models, or JSON data already.
Printable = BaseModel | Sequence[BaseModel] | Mapping[str, object]


def print_json(data: Printable) -> None:
    plain: object = data
    if isinstance(data, BaseModel):
        plain = json_data(data)
    elif isinstance(data, list):
        plain = [json_data(item) for item in data]
    print(json.dumps(plain, indent=2))


def show(data: Printable, as_json: bool, *human: RenderableType) -> None:
    """JSON on stdout for scripts, else the human rendering, one part after another."""
    if as_json:
        print_json(data)
        return
    for part in human:
        console.print(part, highlight=False, soft_wrap=isinstance(part, str))


def read_spec(path: Path | None) -> DeploymentSpec | None:
    return None if path is None else load_spec(path)
