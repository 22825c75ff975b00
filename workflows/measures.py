"""Sluicegate's metrics as the workflows record them (docs/OBSERVABILITY.md).

Only through `workflow.metric_meter()`: it records nothing while a workflow replays, so a
worker that takes over a deployment does not count its rollback again, and it issues no
command, so histories are unchanged. Temporal adds the bounded labels `namespace`,
`task_queue` and `workflow_type`. Counters are named without `_total` and durations
without `_seconds`: the worker's Prometheus exporter adds both suffixes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow

ROLLBACKS = "sluicegate_rollbacks"
BREACH_TO_ROLLBACK = "sluicegate_breach_to_rollback"
DEADLINES_PASSED = "sluicegate_deadlines_passed"

# Why a deployment rolled back, as a bounded label: the canary's health (breach, or a
# watcher that failed), a person's or sluicegate's abort (a progress deadline too), a
# failed hook, a gate left undecided past max_wait, a router instance that could not be
# set or kept, a cancellation, or an activity that failed for good.
RollbackCause = Literal[
    "breach", "abort", "hook_failed", "gate_timeout", "router", "cancelled", "error"
]  # fmt: skip


def count_rollback(cause: RollbackCause, breached_at: datetime | None) -> None:
    """A rollback verified by read-back; for a breach, the time since the breaching check."""
    meter = workflow.metric_meter()
    meter.create_counter(ROLLBACKS, "rollbacks verified by read-back, by cause").add(
        1, {"reason": cause}
    )
    if breached_at is not None:
        meter.create_histogram_timedelta(
            BREACH_TO_ROLLBACK, "time from the breaching check to the verified rollback"
        ).record(max(workflow.now() - breached_at, timedelta(0)))


def count_deadline_passed(deadline: Literal["progress", "max_wait"], then: str) -> None:
    """A deadline passed with the deployment undecided: the spec's `progress_deadline`, or
    a manual gate's `max_wait`; `then` is what follows (`rollback`, or `page` and wait)."""
    workflow.metric_meter().create_counter(
        DEADLINES_PASSED, "deadlines passed while the deployment ran, by deadline and action"
    ).add(1, {"deadline": deadline, "then": then})
