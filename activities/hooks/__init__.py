"""The `run_hook` activity: run one lifecycle hook (http, command or smoke) and report it.

A hook that ran and failed is a `HookResult` with `ok` false and its evidence, so the
workflow's history shows it; the activity raises only when something is wrong with the
worker itself. A hook's own attempts happen in here (http: the spec's `attempts`, with
short pauses; command and smoke: once); Temporal retries the activity only when a worker
dies inside it, which runs the hook again: hooks must be idempotent (docs/HOOKS.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.evidence.recorder import record
from activities.heartbeats import heartbeating
from activities.hooks.command import run_command
from activities.hooks.http import run_http
from activities.hooks.outcome import Ran
from activities.hooks.smoke import run_smoke
from activities.measures import record_hook
from sluicegate.contracts import RUN_HOOK, HookResult, RunHookInput
from sluicegate.evidence import HOOK, EventRecord
from sluicegate.settings import Settings
from sluicegate.spec import CommandHook, HttpHook, SmokeHook


class HookRunner:
    """The `run_hook` activity, bound to the commands the worker's settings declare."""

    def __init__(self, settings: Settings) -> None:
        self.commands = settings.commands

    @activity.defn(name=RUN_HOOK)
    @heartbeating
    async def run_hook(self, request: RunHookInput) -> HookResult:
        hook = request.hook
        started = time.monotonic()
        ran = await self._run(request)
        took = time.monotonic() - started
        record_hook(hook.type, request.context.event, ran.ok, timedelta(seconds=took))
        result = HookResult(
            name=hook.name,
            kind=hook.type,
            ok=ran.ok,
            detail=ran.detail,
            output=ran.output,
            status=ran.status,
            attempts=ran.attempts,
            seconds=round(took, 3),
            event=request.context.event,
            weight=request.context.weight,
        )
        record(_event(request, result))
        log = activity.logger.info if result.ok else activity.logger.warning
        log("%s hook: %s", request.context.event, result.describe())
        return result

    async def _run(self, request: RunHookInput) -> Ran:
        hook = request.hook
        if isinstance(hook, HttpHook):
            return await run_http(hook, request.context)
        if isinstance(hook, CommandHook):
            return await run_command(hook, request.context, self.commands)
        assert isinstance(hook, SmokeHook)
        return await run_smoke(hook, request.targets)


__all__ = ["HookRunner"]


def _event(request: RunHookInput, result: HookResult) -> EventRecord:
    """The hook's run as the evidence store keeps it."""
    context = request.context
    return EventRecord(
        deployment_id="",  # the store finds it from the run
        run_id=context.run_id,
        service=context.service,
        kind=HOOK,
        at=datetime.now(UTC),
        stage=context.stage,
        canary_weight=context.weight,
        summary=f"{context.event} {result.describe()}",
        ident=activity.info().activity_id,
    )
