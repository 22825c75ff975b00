"""`sluice watch`: follow one deployment until it ends: live in a terminal, one plain line
per change in a pipe or a log, or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text
from temporalio.client import Client

from frontends.cli.render import result_line, status_view
from frontends.client.deployments import DeploymentHandle, deployment_handle, follow
from frontends.client.history import DEPLOYMENT, latest
from frontends.client.lines import control_line, event_line
from frontends.client.operations import json_data
from sluicegate.contracts import CheckReport, ControlRecord, DeploymentResult, DeploymentStatus


def exit_code(result: DeploymentResult) -> int:
    """0 when promoted, 1 when rolled back."""
    return 0 if result.outcome == "promoted" else 1


async def watch(client: Client, service: str, console: Console) -> int:
    """Show the deployment until it ends; its exit code says how it ended."""
    record = await latest(client, service)
    if record.kind != DEPLOYMENT:
        console.print(f"{service}: the latest change is a {record.kind}; waiting for it")
        await client.get_workflow_handle(record.workflow_id).result()
        console.print(f"{service}: {record.kind} finished")
        return 0
    handle = deployment_handle(client, service)
    if console.is_terminal:
        shown_controls = await _live(client, handle, console)
    else:
        shown_controls = await _lines(client, handle, console)
    result = await handle.result()
    _controls(console, result.controls[shown_controls:])
    console.print(result_line(result), soft_wrap=True)
    if result.evidence is not None and result.outcome == "rolled_back":
        evidence = result.evidence
        console.print(f"evidence: check {evidence.number}: {evidence.describe()}", soft_wrap=True)
    return exit_code(result)


class _View:
    """The live view's latest status and check; rich renders it at every refresh, so the
    bake's time left keeps moving between changes."""

    def __init__(self) -> None:
        self.status: DeploymentStatus | None = None
        self.check: CheckReport | None = None

    def __rich__(self) -> RenderableType:
        if self.status is None:
            return Text("waiting for a worker to answer the status query…")
        return status_view(self.status, self.check)


async def _live(client: Client, handle: DeploymentHandle, console: Console) -> int:
    """Redraw the status view in place until the deployment ends; the controls shown."""
    shown_controls = 0
    view = _View()
    with Live(view, console=console, refresh_per_second=4, transient=True) as live:
        async for event in follow(client, handle.id):
            if isinstance(event, DeploymentStatus):
                _controls(live.console, event.controls[shown_controls:])
                shown_controls = len(event.controls)
                view.status = event
            else:
                view.check = event
    return shown_controls


async def _lines(client: Client, handle: DeploymentHandle, console: Console) -> int:
    """Without a terminal (a pipe, a CI log): one plain line per change, as it happens."""
    shown_controls = 0
    async for event in follow(client, handle.id):
        if isinstance(event, DeploymentStatus):
            _controls(console, event.controls[shown_controls:])
            shown_controls = len(event.controls)
        console.print(event_line(event), soft_wrap=True, markup=False, highlight=False)
    return shown_controls


def _controls(console: Console, controls: Sequence[ControlRecord]) -> None:
    for control in controls:
        console.print(f"[bold]operator[/]: {control_line(control)}", soft_wrap=True)


async def watch_json(client: Client, service: str) -> int:
    """One JSON object per line: each status change and live check, then the result."""
    record = await latest(client, service)
    if record.kind != DEPLOYMENT:
        await client.get_workflow_handle(record.workflow_id).result()
        print(json.dumps({"kind": record.kind, "finished": True}), flush=True)
        return 0
    async for item in follow(client, record.workflow_id):
        kind = "status" if isinstance(item, DeploymentStatus) else "check"
        print(json.dumps({"kind": kind, **json_data(item)}), flush=True)
    result = await deployment_handle(client, service).result()
    print(json.dumps({"kind": "result", **json_data(result)}), flush=True)
    return exit_code(result)
