"""Restoring a backup: the loop that never gives up, and RestoreRelease, which uses it to put
a service's routing back to a chosen backup (`sluice restore`, and `sluice rollback` of a
promoted release) as its own recorded workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from sluicegate import visibility
    from sluicegate.contracts import (
        ROLLBACK,
        SNAPSHOT,
        BackupRecord,
        RestoreInput,
        RestoreResult,
        RollbackInput,
        RollbackResult,
        RouterState,
        SnapshotInput,
    )
    from sluicegate.spec import RouterSpec
    from workflows.details import upsert_search_attributes
    from workflows.retries import (
        QUICK_HEARTBEAT,
        QUICK_RETRIES,
        ROLLBACK_FIRST_PAUSE,
        ROLLBACK_RETRIES,
        ROLLBACK_RETRY_PAUSE,
    )


async def restore_until_done(
    router: RouterSpec,
    backup: BackupRecord,
    summary: str,
    on_trouble: Callable[[str | None], None],
) -> RouterState:
    """Restore `backup` until it works, verified by read-back. Never abandoned, not even
    when cancelled. `on_trouble(problem)` hears each failed round, then `None` on retrying."""
    pause: timedelta | None = None
    while True:
        try:
            result = await workflow.execute_activity(
                ROLLBACK,
                RollbackInput(router=router, backup=backup),
                result_type=RollbackResult,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=QUICK_HEARTBEAT,
                retry_policy=ROLLBACK_RETRIES,
                summary=summary,
            )
            return result.state
        except (ActivityError, asyncio.CancelledError) as err:
            if is_cancelled_exception(err):
                continue  # a cancel that lands mid-restore: restore all the same
            # P0: traffic may still reach a bad version. Keep trying, loudly.
            on_trouble(root_cause(err))
            pause = _next_pause(pause)
            with contextlib.suppress(asyncio.CancelledError):
                await workflow.sleep(pause, summary="retry rollback")
            on_trouble(None)


def _next_pause(previous: timedelta | None) -> timedelta:
    """The pause before the next round of restore attempts."""
    if previous is None:
        return ROLLBACK_FIRST_PAUSE
    return min(previous * 2, ROLLBACK_RETRY_PAUSE)


def root_cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)


@workflow.defn(name="RestoreRelease")
class RestoreRelease:
    """Back up the routing as it is, then restore the chosen backup, verified by read-back.

    Runs under the service's deployment id (deploy-<service>), so it can never overlap a
    deployment of the same service.
    """

    @workflow.init
    def __init__(self, request: RestoreInput) -> None:
        self._request = request
        self._phase = "backing_up"
        self._problem: str | None = None

    @workflow.run
    async def run(self, request: RestoreInput) -> RestoreResult:
        self._publish()
        undo = await workflow.execute_activity(
            SNAPSHOT,
            SnapshotInput(
                service=request.service,
                label=workflow.info().run_id,
                router=request.router,
                backup=request.backup_store,
            ),
            result_type=BackupRecord,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
            summary=f"back up {request.service}'s routing before restoring",
        )
        self._set_phase("restoring")
        state = await restore_until_done(
            request.router,
            request.backup,
            f"restore backup {request.backup_id}: {request.backup.state.describe()}",
            self._on_trouble,
        )
        self._problem = None
        self._set_phase("restored", state.canary_weight)
        return RestoreResult(
            service=request.service,
            backup_id=request.backup_id,
            state=state,
            undo=undo,
            by=request.by,
            reason=request.reason,
        )

    def _on_trouble(self, problem: str | None) -> None:
        self._problem = problem
        self._set_phase("failed" if problem else "restoring")

    def _set_phase(self, phase: str, weight: int | None = None) -> None:
        self._phase = phase
        self._publish(weight)

    def _publish(self, weight: int | None = None) -> None:
        updates: list[SearchAttributeUpdate[str] | SearchAttributeUpdate[int]] = [
            visibility.DEPLOY_SERVICE.value_set(self._request.service),
            visibility.DEPLOY_PHASE.value_set(self._phase),
        ]
        if weight is not None:
            updates.append(visibility.DEPLOY_CANARY_WEIGHT.value_set(weight))
        if self._phase == "restored":
            updates.append(visibility.DEPLOY_OUTCOME.value_set("restored"))
        upsert_search_attributes(updates)
        request = self._request
        lines = [
            f"**{request.service}**: restore backup `{request.backup_id}` · "
            f"phase **{self._phase}**",
            "",
            f"Target: {request.backup.state.describe()}",
            f"Asked by {request.by}: {request.reason or 'no reason given'}",
        ]
        if self._problem:
            lines.append(f"**RESTORE FAILING, retrying:** {self._problem}")
        workflow.set_current_details("\n".join(lines))
