"""A stage's health watcher, as the workflow holds it: started, judged when it ends, and
stopped before anything else changes the routing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from sluicegate.analysis.baseline import Baseline
    from sluicegate.contracts import (
        KEEP_ROUTING,
        WATCH_HEALTH,
        CheckReport,
        InstanceRouting,
        KeepRoutingInput,
        RouterState,
        WatchHealthInput,
        WatchHealthResult,
        heartbeat_timeout,
    )
    from sluicegate.describe import short_duration
    from sluicegate.spec import DeploymentSpec, Stage
    from workflows.measures import RollbackCause
    from workflows.restore import root_cause
    from workflows.retries import WATCH_RETRIES
    from workflows.steps import WAIT


# From this patch on, stopping a watcher does not wait for it to hear of the cancel (which
# it does only at its next heartbeat, once per check): it asks the server before it
# re-applies drift, so it cannot undo what the workflow does next. Older histories replay
# with the watcher awaited, heartbeating twice a second.
WATCHER_NOT_AWAITED_PATCH = "watcher-not-awaited"
TRY_CANCEL = workflow.ActivityCancellationType.TRY_CANCEL

# A stage's drift checks: its watcher's router instances (None: the spec's one router, as
# before fleets), and those of each other task queue.
Watched = tuple[tuple[InstanceRouting, ...] | None, dict[str, tuple[InstanceRouting, ...]]]


class Stop(Exception):
    """Leave the stage loop and roll back, with the reason and the evidence."""

    def __init__(
        self,
        reason: str,
        evidence: CheckReport | None = None,
        unhealthy: bool = False,
        cause: RollbackCause = "abort",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.evidence = evidence
        self.unhealthy = unhealthy  # the canary's health, not a person, stopped it
        self.cause: RollbackCause = "breach" if unhealthy else cause  # the metrics' label


class Watcher:
    """One long-running `watch_health` activity that judges every check of a stage, and,
    for router instances on other workers' hosts, a `keep_routing` activity per host."""

    def __init__(
        self,
        spec: DeploymentSpec,
        stage: Stage,
        expected: RouterState,
        baseline: Baseline | None,
        watched: Watched = (None, {}),
        hand_over_at: datetime | None = None,
        resume_from: CheckReport | None = None,
    ) -> None:
        self.stage = stage
        interval = spec.analysis.interval
        fleet, elsewhere = watched
        not_awaited = workflow.patched(WATCHER_NOT_AWAITED_PATCH)
        self._task: asyncio.Task[WatchHealthResult] = workflow.start_activity(
            WATCH_HEALTH,
            WatchHealthInput(
                service=spec.service,
                stage=stage.name,
                router=spec.router,
                expected=expected,
                analysis=spec.analysis,
                stable_version=spec.stable.version,
                canary_version=spec.canary.version,
                baseline=baseline,
                fleet=fleet,
                resume_from=resume_from,
                hand_over_at=hand_over_at,
                heartbeat_each_check=not_awaited,
                deployment_id=workflow.info().first_execution_run_id,
            ),
            result_type=WatchHealthResult,
            start_to_close_timeout=timedelta(days=30),
            heartbeat_timeout=heartbeat_timeout(interval),
            retry_policy=WATCH_RETRIES,
            cancellation_type=TRY_CANCEL if not_awaited else WAIT,
            summary=f"watch health at {stage.weight}% every {short_duration(interval)}",
        )
        self._keepers = {
            queue: workflow.start_activity(
                KEEP_ROUTING,
                KeepRoutingInput(
                    service=spec.service, stage=stage.name, fleet=routings, interval=interval
                ),
                task_queue=queue,
                start_to_close_timeout=timedelta(days=30),
                heartbeat_timeout=heartbeat_timeout(interval),
                retry_policy=WATCH_RETRIES,
                cancellation_type=WAIT,
                summary=f"keep routing at {stage.weight}% on "
                + ", ".join(each.router.label() for each in routings),
            )
            for queue, routings in elsewhere.items()
        }

    def alarm(self, latest: CheckReport | None) -> Stop | None:
        """A watcher that ended on a breach, on lasting lack of data, or on an error; or a
        routing keeper that failed (its host's worker is gone: the instances there are out
        of reach, so the deployment goes back)."""
        for queue, keeper in self._keepers.items():
            if keeper.done() and not keeper.cancelled():
                error = keeper.exception()
                if error is not None and not is_cancelled_exception(error):
                    reason = f"routing on task queue {queue} unchecked: {root_cause(error)}"
                    return Stop(reason, latest, cause="router")
        task = self._task
        if not task.done() or task.cancelled():
            return None
        error = task.exception()
        if error is not None:
            if is_cancelled_exception(error):
                return None
            return Stop(f"health watch failed: {root_cause(error)}", latest, unhealthy=True)
        result = task.result()
        if result.status in ("healthy", "handed_over"):
            return None
        where = f"stage {self.stage.name} ({self.stage.weight}%), check {result.checks}"
        detail = result.last.describe() if result.last else "no check completed"
        return Stop(f"health {result.status} at {where}: {detail}", result.last, unhealthy=True)

    def handed_over(self) -> CheckReport | None:
        """The check the watcher ended on to hand over to the next run, if it did."""
        result = self._result()
        return result.last if result is not None and result.status == "handed_over" else None

    def _result(self) -> WatchHealthResult | None:
        task = self._task
        if not task.done() or task.cancelled() or task.exception():
            return None
        return task.result()

    def ended_healthy(self) -> bool:
        result = self._result()
        return result is not None and result.status == "healthy"

    async def stop(self) -> None:
        """Cancel the watcher (and wait until it has stopped, before `watcher-not-awaited`),
        so it cannot undo the next shift; wait until the routing keepers have stopped.

        A keeper whose worker died cannot confirm the cancel: its attempt times out
        instead, and it is stopped all the same (a live but hung attempt learns of it at
        its next heartbeat).
        """
        for keeper in self._keepers.values():
            await _stopped(keeper)
        await _stopped(self._task)


async def _stopped(task: asyncio.Task[Any]) -> None:
    """Cancel an activity and wait until it has stopped (or its attempt timed out)."""
    if task.done():
        return
    task.cancel()
    try:
        await task
    except ActivityError as err:
        if is_cancelled_exception(err) or isinstance(err.cause, TemporalTimeout):
            return
        raise
    except asyncio.CancelledError:
        pass
