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
from frontends.client.lines import control_line, event_line, hook_lines
from frontends.client.operations import json_data
from sluicegate.contracts import (
    CheckReport,
    ControlRecord,
    DeploymentResult,
    DeploymentStatus,
    HookResult,
)


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
    news = _News()
    if console.is_terminal:
        await _live(client, handle, console, news)
    else:
        await _lines(client, handle, console, news)
    result = await handle.result()
    news.show(console, result.controls, result.hooks)
    console.print(result_line(result), soft_wrap=True)
    if result.evidence is not None and result.outcome == "rolled_back":
        evidence = result.evidence
        console.print(f"evidence: check {evidence.number}: {evidence.describe()}", soft_wrap=True)
    return exit_code(result)


class _News:
    """Controls and hook results are printed once each, as they arrive, above the view."""

    def __init__(self) -> None:
        self.controls = 0
        self.hooks = 0

    def show(
        self, console: Console, controls: Sequence[ControlRecord], hooks: Sequence[HookResult]
    ) -> None:
        for control in controls[self.controls :]:
            console.print(f"[bold]operator[/]: {control_line(control)}", soft_wrap=True)
        for hook in hooks[self.hooks :]:
            for line in hook_lines(hook):
                console.print(line, soft_wrap=True, markup=False, highlight=False)
        self.controls = max(self.controls, len(controls))
        self.hooks = max(self.hooks, len(hooks))


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


async def _live(client: Client, handle: DeploymentHandle, console: Console, news: _News) -> None:
    """Redraw the status view in place until the deployment ends."""
    view = _View()
    with Live(view, console=console, refresh_per_second=4, transient=True) as live:
        async for event in follow(client, handle.id):
            if isinstance(event, DeploymentStatus):
                news.show(live.console, event.controls, event.hooks)
                view.status = event
            else:
                view.check = event


async def _lines(client: Client, handle: DeploymentHandle, console: Console, news: _News) -> None:
    """Without a terminal (a pipe, a CI log): one plain line per change, as it happens."""
    async for event in follow(client, handle.id):
        if isinstance(event, DeploymentStatus):
            news.show(console, event.controls, event.hooks)
        console.print(event_line(event), soft_wrap=True, markup=False, highlight=False)


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
