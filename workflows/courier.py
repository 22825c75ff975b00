"""The courier: delivers a deployment's notifications one at a time, in order, off the
critical path, and gives the last ones a bounded time to go out when the deployment ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import NOTIFY, DeliveryReport, NotifyInput
    from sluicegate.notifications import Event, Notification, severity_of
    from sluicegate.spec import DeploymentSpec
    from workflows.restore import root_cause
    from workflows.retries import NOTIFY_RETRIES, QUICK_HEARTBEAT

# How long a finished deployment waits for its last notifications before it ends anyway.
NOTIFICATION_GRACE = timedelta(minutes=1)


def notification(
    spec: DeploymentSpec,
    event: Event,
    summary: str,
    weight: int,
    stage: str | None,
    evidence: tuple[str, ...] = (),
    by: str | None = None,
) -> Notification:
    """A notification of this deployment, now."""
    info = workflow.info()
    return Notification(
        event=event,
        severity=severity_of(event, weight),
        service=spec.service,
        workflow_id=info.workflow_id,
        run_id=info.run_id,
        first_run_id=info.first_execution_run_id,
        stable_version=spec.stable.version,
        canary_version=spec.canary.version,
        stage=stage,
        canary_weight=weight,
        summary=summary,
        evidence=evidence,
        by=by,
        at=workflow.now(),
        committed_at=spec.canary.committed_at,
    )


class Courier:
    """Queued notifications go out in the order they were queued; a failed one is noted in
    `failures` (and `on_failure` is called, so the status shows it), never retried forever."""

    def __init__(self, on_failure: Callable[[], None]) -> None:
        self.failures: list[str] = []
        self._on_failure = on_failure
        self._outbox: list[Notification] = []
        self._delivering = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._deliver())

    def send(self, notification: Notification) -> None:
        self._outbox.append(notification)

    async def _deliver(self) -> None:
        while not self._stopping:
            await workflow.wait_condition(lambda: bool(self._outbox))
            notification = self._outbox[0]
            self._delivering = True
            try:
                report = await workflow.execute_activity(
                    NOTIFY,
                    NotifyInput(notification=notification),
                    result_type=DeliveryReport,
                    start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=QUICK_HEARTBEAT,
                    schedule_to_close_timeout=NOTIFICATION_GRACE * 2,
                    retry_policy=NOTIFY_RETRIES,
                    summary=f"notify {notification.event} ({notification.severity})",
                )
                problems = [f"{f.channel}: {f.error}" for f in report.failed]
            except ActivityError as err:
                problems = [root_cause(err)]
            finally:
                self._delivering = False
            if problems:
                self.failures += [f"{notification.event} → {p}" for p in problems]
                self._on_failure()
            self._outbox.pop(0)

    async def flush(self) -> None:
        """Give the last notifications a bounded time to go out before the workflow ends.

        Past the grace time the courier stops after the delivery in flight: a workflow
        never ends with a notify activity still pending. The grace timer is left to lapse,
        never cancelled (Temporal's time-skipping test server wedges on cancelling a timer
        that fires during the workflow task that cancels it).
        """
        if not self._outbox:
            return
        grace = asyncio.create_task(
            workflow.sleep(NOTIFICATION_GRACE, summary="last notifications")
        )
        await workflow.wait_condition(lambda: not self._outbox or grace.done())
        if not self._outbox:
            return
        self._stopping = True
        await workflow.wait_condition(lambda: not self._delivering)
        if events := ", ".join(n.event for n in self._outbox):
            self.failures.append(f"not delivered before the end: {events}")
