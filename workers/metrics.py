"""The worker's Prometheus endpoint: the Temporal SDK's runtime metrics and Sluicegate's,
served by the one Temporal runtime on `metrics_address` (docs/OBSERVABILITY.md).

Activities and workflows record through the meters Temporal hands them
(`activities/measures.py`, `workflows/measures.py`); this module makes the runtime that
serves them, and keeps the one gauge the worker itself measures: deployments in flight,
by phase, as Temporal's visibility lists them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from typing import get_args

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from activities.measures import CHECK_LATENESS, HOOK_DURATION
from sluicegate.contracts import CANARY_DEPLOYMENT, FINISHED, Phase
from sluicegate.settings import SettingsError
from sluicegate.visibility import DEPLOY_PHASE
from workflows.measures import BREACH_TO_ROLLBACK

IN_FLIGHT = "sluicegate_deployments_in_flight"
# Phases a running deployment can be in: every label value is set, 0 included, each time.
RUNNING_PHASES: tuple[str, ...] = tuple(p for p in get_args(Phase) if p not in FINISHED)
PHASES_EVERY = timedelta(seconds=10)
# Seconds: lateness around the one-second target, rollbacks around the one-minute one,
# hooks up to a command's quarter of an hour.
BUCKETS = {
    CHECK_LATENESS: (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    BREACH_TO_ROLLBACK: (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300),
    HOOK_DURATION: (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
}
RUNNING = f"WorkflowType = '{CANARY_DEPLOYMENT}' AND ExecutionStatus = 'Running'"


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics at http://<address>/metrics.

    Names follow Prometheus' conventions: counters end in `_total`, durations are seconds
    and end in `_seconds`; the SDK's own metrics start with `temporal_`.
    """
    config = PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={name: list(bounds) for name, bounds in BUCKETS.items()},
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=config, attach_service_name=False))
    except ValueError as err:  # the address is taken, or cannot be bound
        raise SettingsError(f"metrics_address {address}: {err}") from None


async def count_phases(client: Client, meter: MetricMeter) -> None:
    """Set the in-flight gauge once: running CanaryDeployments by their DeployPhase."""
    counts: Counter[str] = Counter()
    async for execution in client.list_workflows(RUNNING):
        phase = execution.typed_search_attributes.get(DEPLOY_PHASE)
        counts[phase or "validating"] += 1
    gauge = meter.create_gauge(IN_FLIGHT, "running deployments, by phase (cluster-wide)")
    for phase in RUNNING_PHASES:
        gauge.set(counts[phase], {"phase": phase})


async def keep_counting_phases(
    client: Client, meter: MetricMeter, every: timedelta = PHASES_EVERY
) -> None:
    """Refresh the in-flight gauge every `every` until cancelled; a failed listing is
    logged and tried again next time (the gauge keeps its last values)."""
    while True:
        try:
            await count_phases(client, meter)
        except RPCError as err:
            logging.warning("could not count deployments in flight: %s", err.message)
        except Exception:  # never let the gauge's refresh end for good
            logging.exception("could not count deployments in flight")
        await asyncio.sleep(every.total_seconds())
