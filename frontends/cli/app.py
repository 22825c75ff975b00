"""`sluice`: start, watch, steer and undo canary deployments from a terminal.

This module is the command line's top: the typer app, its global options, and every known
error as one line and an exit code. The commands live in steering.py, routing.py, checks.py
and serving.py; what they share in session.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from temporalio.service import RPCError
from typer.core import TyperGroup

from frontends.cli import checks, reporting, routing, serving, steering
from frontends.cli.session import Exit, Overrides, errors
from sluicegate.errors import (
    ControlRefused,
    DeploymentAlreadyRunning,
    DeploymentNotFound,
    SluicegateError,
)
from sluicegate.settings import CONFIG_ENV
from workers.telemetry import shutdown_tracing

__all__ = ["Exit", "app", "classify", "entry", "main"]

EXIT_CODES_HELP = (
    "Exit codes: 0 ok or promoted, 1 rolled back / unhealthy / a check failed, "
    "2 error (bad input, settings, Temporal unreachable, no worker), 3 refused, 4 not found."
)
EXAMPLE_LINES = ("Example:", "Examples:")


def flowed(text: str | None) -> str | None:
    """`text` with each paragraph's lines joined; blank lines and `Example:` lines stay."""
    if text is None:
        return None
    paragraphs: list[str] = []
    for paragraph in text.split("\n\n"):
        joined: list[str] = []
        for line in paragraph.strip().splitlines():
            if joined and not line.strip().startswith(EXAMPLE_LINES):
                joined[-1] += " " + line.strip()
            else:
                joined.append(line.strip())
        paragraphs.append("\n".join(joined))
    return "\n\n".join(paragraphs)


class FlowedHelp(TyperGroup):
    """The app's group: its help and every command's as flowed paragraphs."""

    # Typer's rich help keeps a docstring's line breaks, so a sentence wrapped in the source
    # would break there and again at the terminal's width; joined, the terminal wraps it once.
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.help = flowed(self.help)
        for command in self.commands.values():
            command.help = flowed(command.help)


app = typer.Typer(
    name="sluice",
    help="Progressive (canary) deployments as durable Temporal workflows.\n\n"
    "Settings come from SLUICEGATE_* environment variables and the TOML file in "
    f"{CONFIG_ENV} (default ~/.config/sluicegate/config.toml). {EXIT_CODES_HELP}",
    cls=FlowedHelp,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# In this order in `sluice --help`: deploy and steer, undo and restore, check, report, serve.
for module in (steering, routing, checks, reporting, serving):
    app.add_typer(module.commands)


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
    shutdown_tracing()  # the spans still buffered; os._exit skips the SDK's exit hook
    # Skip interpreter teardown: the SDK's native threads can abort it (exit 134) after
    # the work is done, which would turn a correct exit code into a crash.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
