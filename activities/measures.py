"""Sluicegate's metrics as the activities record them (docs/OBSERVABILITY.md).

Every metric goes through the running activity's `activity.metric_meter()`: the worker's
Temporal runtime serves it with the SDK's own metrics on one Prometheus endpoint
(`metrics_address`), and Temporal adds the bounded labels `namespace`, `task_queue` and
`activity_type`. Outside an activity (a router used by a test or the demo) nothing is
recorded. Label values are bounded: types, verdicts, operations, error classes, never a
service, workflow or run id. Counters are named without `_total` and durations without
`_seconds`: the runtime's Prometheus exporter adds both suffixes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.common import MetricMeter

CHECKS = "sluicegate_checks"
CHECK_LATENESS = "sluicegate_check_lateness"
ROUTER_ERRORS = "sluicegate_router_errors"
METRIC_SOURCE_ERRORS = "sluicegate_metric_source_errors"
HOOK_DURATION = "sluicegate_hook_duration"
NOTIFICATION_FAILURES = "sluicegate_notification_failures"


def _meter() -> MetricMeter | None:
    return activity.metric_meter() if activity.in_activity() else None


def count_check(verdict: str) -> None:
    """One health check judged: `healthy`, `breach` or `inconclusive`."""
    if meter := _meter():
        meter.create_counter(CHECKS, "health checks judged, by verdict").add(
            1, {"verdict": verdict}
        )


def record_check_lateness(late: timedelta) -> None:
    """How long after it was due a check was judged (collection, drift check, a slow loop)."""
    if meter := _meter():
        meter.create_histogram_timedelta(
            CHECK_LATENESS, "time from a health check's due time to its verdict"
        ).record(max(late, timedelta(0)))


def count_router_error(router: str, operation: str, error: Exception) -> None:
    """A router operation (`read`, `apply`) that raised; `error` is its class name."""
    if meter := _meter():
        meter.create_counter(ROUTER_ERRORS, "router operations that failed").add(
            1, {"router": router, "operation": operation, "error": type(error).__name__}
        )


def count_metric_source_error(source: str) -> None:
    """A poll of the main metric source that could not answer (the check has no data)."""
    if meter := _meter():
        meter.create_counter(METRIC_SOURCE_ERRORS, "metric source polls that failed").add(
            1, {"source": source}
        )


def record_hook(kind: str, event: str, ok: bool, took: timedelta) -> None:
    """One lifecycle hook run: its type, the event it ran at, and whether it passed."""
    if meter := _meter():
        meter.create_histogram_timedelta(HOOK_DURATION, "lifecycle hook run time").record(
            took, {"kind": kind, "event": event, "outcome": "ok" if ok else "failed"}
        )


def count_notification_failure(channel_type: str, event: str) -> None:
    """A notification a channel did not take after every attempt."""
    if meter := _meter():
        meter.create_counter(
            NOTIFICATION_FAILURES, "notifications a channel did not take, after every attempt"
        ).add(1, {"channel_type": channel_type, "event": event})
