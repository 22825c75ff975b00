"""The worker's evidence store: its recorder, and the DORA figures of all services and the
store's health as Prometheus gauges on the worker's metrics endpoint (docs/REPORTS.md)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.common import MetricMeter

from activities.evidence.recorder import Recorder, use_recorder
from activities.evidence.store import EvidenceStore, StoreUnavailable
from sluicegate.evidence import DoraFigures, dora
from sluicegate.settings import Settings

DORA_WINDOW = timedelta(days=30)
# The figures are read again once this worker has kept an outcome, and at least this often
# (other workers' outcomes, the window moving on).
DORA_EVERY = timedelta(minutes=5)
STORE_EVERY = timedelta(seconds=10)
DORA_GAUGES = {
    "per_day": ("sluicegate_dora_deployments_per_day", "deployments that moved traffic, per day"),
    "change_failure_rate": (
        "sluicegate_dora_change_failure_rate",
        "share of deployments that moved traffic and were rolled back",
    ),
    "time_to_restore_median_s": (
        "sluicegate_dora_time_to_restore_seconds",
        "median time from breach detected to rollback verified",
    ),
    "duration_median_s": (
        "sluicegate_dora_deployment_duration_seconds",
        "median time from a deployment's start to its outcome",
    ),
    "lead_time_median_s": (
        "sluicegate_dora_lead_time_seconds",
        "median time from the canary's commit to its promotion",
    ),
}
STORE_UP = "sluicegate_evidence_store_up"
NOT_KEPT = "sluicegate_evidence_records_not_kept"


def start_recorder(settings: Settings) -> Recorder | None:
    """The recorder this worker's activities write to; None when `evidence_url` is off."""
    url = settings.evidence_store
    if url is None:
        logging.info("evidence store off: no checks or events are kept")
        return None
    retention = settings.evidence_retention or None
    recorder = Recorder(url, retention).start()
    use_recorder(recorder)
    logging.info("evidence store: %s", url.describe())
    return recorder


def stop_recorder(recorder: Recorder | None) -> None:
    use_recorder(None)
    if recorder is not None:
        recorder.close()


def _read_dora(settings: Settings) -> DoraFigures:
    """Every service's deployments together over the last DORA_WINDOW."""
    url = settings.evidence_store
    assert url is not None
    now = datetime.now(UTC)
    with EvidenceStore(url) as store:
        return dora(store.summaries(now - DORA_WINDOW), now - DORA_WINDOW, now)


def set_dora_gauges(meter: MetricMeter, figures: DoraFigures) -> None:
    """The figures without labels: a service is not a label value here (docs/OBSERVABILITY.md);
    `sluice report --since 30d` gives them per service."""
    for name, (metric, description) in DORA_GAUGES.items():
        value = getattr(figures, name)
        if value is not None:
            meter.create_gauge_float(metric, description).set(float(value))


async def keep_exporting(settings: Settings, recorder: Recorder, meter: MetricMeter) -> None:
    """Refresh the store's gauges every STORE_EVERY, and the DORA ones once this worker kept
    an outcome or DORA_EVERY passed, until cancelled; a store that cannot answer leaves the
    DORA gauges as they were."""
    up = meter.create_gauge(STORE_UP, "1 while the evidence store takes what the worker writes")
    not_kept = meter.create_counter(NOT_KEPT, "checks and events the evidence store lost")
    counted = 0
    outcomes = -1  # none read yet
    dora_due = datetime.now(UTC)
    while True:
        up.set(int(recorder.up))
        if recorder.not_kept > counted:
            not_kept.add(recorder.not_kept - counted)
            counted = recorder.not_kept
        if datetime.now(UTC) >= dora_due or recorder.outcomes != outcomes:
            dora_due = datetime.now(UTC) + DORA_EVERY
            outcomes = recorder.outcomes
            try:
                set_dora_gauges(meter, await asyncio.to_thread(_read_dora, settings))
            except StoreUnavailable as err:
                logging.warning("could not read DORA figures: %s", err)
            except Exception:  # never let the refresh end for good
                logging.exception("could not read DORA figures")
        await asyncio.sleep(STORE_EVERY.total_seconds())
