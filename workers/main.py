"""The Sluicegate worker: runs CanaryDeployment workflows and their activities."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.deployment import ACTIVITIES
from activities.hooks import HookRunner
from activities.http import close_shared_client
from activities.notify import Notifier
from activities.operations import OPERATOR_ACTIVITIES
from activities.supersede import SUPERSEDE_ACTIVITIES
from sluicegate.errors import SluicegateError
from sluicegate.settings import Settings, load_settings
from sluicegate.visibility import SEARCH_ATTRIBUTES
from workers.client import connect
from workers.evidence import keep_exporting, start_recorder, stop_recorder
from workers.logs import configure_logging
from workers.metrics import keep_counting_phases, metrics_runtime
from workers.search_attributes import ensure_search_attributes
from workers.telemetry import WORKER, configure_tracing, shutdown_tracing
from workflows.canary import CanaryDeployment
from workflows.operations import OPERATOR_WORKFLOWS
from workflows.restore import RestoreRelease
from workflows.supersede import SupersedeDeployment

# Heartbeats reach the server at least this often, so a cancelled activity the workflow
# waits for (a routing keeper, a traffic shift) stops promptly. A stage's watcher heartbeats
# only once per check: the workflow does not wait for it (workflows/watch.py).
HEARTBEAT_THROTTLE = timedelta(seconds=1)
# A workflow task waits this long for this worker before any worker may take it: a
# worker that died mid-deployment delays the deployment by this much (SDK default 10 s).
STICKY_TIMEOUT = timedelta(seconds=2)


def build_worker(
    client: Client,
    task_queue: str,
    max_watched_deployments: int = 500,
    activities: Sequence[Callable[..., Any]] | None = None,
    settings: Settings | None = None,
) -> Worker:
    """A worker for the deployment workflow and its activities (tests may swap those).

    `settings` gives the notification channels, the Web UI address for links and the
    commands hooks may run.
    """
    if activities is None:
        settings = settings or Settings.defaults()
        notifier = Notifier(settings)
        hooks = HookRunner(settings)
        activities = (
            *ACTIVITIES,
            *OPERATOR_ACTIVITIES,
            *SUPERSEDE_ACTIVITIES,
            notifier.notify,
            hooks.run_hook,
        )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[CanaryDeployment, RestoreRelease, SupersedeDeployment, *OPERATOR_WORKFLOWS],
        activities=activities,
        # Each running deployment holds one slot with its watcher, plus short-lived ones.
        max_concurrent_activities=max_watched_deployments * 2,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )


async def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; traces go out if the OTEL_* environment asks."""
    configure_tracing(WORKER)
    try:
        await _serve(settings)
    finally:
        shutdown_tracing()


async def _serve(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM; with `metrics_address`, serve its metrics."""
    runtime = metrics_runtime(settings.metrics_address) if settings.metrics_address else None
    client = await connect(settings, runtime=runtime)
    try:
        await ensure_search_attributes(client)
    except RPCError as err:  # e.g. no operator permission: the cluster's admin must add them
        logging.warning(
            "could not register search attributes (%s); deployments will fail to start until "
            "they exist: %s",
            err.message,
            ", ".join(f"{key.name} ({key.indexed_value_type.name})" for key in SEARCH_ATTRIBUTES),
        )
    worker = build_worker(
        client, settings.task_queue, settings.max_watched_deployments, settings=settings
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    recorder = start_recorder(settings)
    try:
        async with worker:
            logging.info(
                "worker on %s, task queue %s", settings.temporal_address, settings.task_queue
            )
            gauges: list[asyncio.Task[None]] = []
            if runtime is not None:
                logging.info("metrics at http://%s/metrics", settings.metrics_address)
                meter = runtime.metric_meter
                gauges.append(asyncio.create_task(keep_counting_phases(client, meter)))
                if recorder is not None:
                    gauges.append(asyncio.create_task(keep_exporting(settings, recorder, meter)))
            await stop.wait()
            for task in gauges:
                task.cancel()
    finally:
        await asyncio.to_thread(stop_recorder, recorder)  # what is queued is written first
    await close_shared_client()


def main(argv: Sequence[str] | None = None) -> None:
    """`sluicegate-worker` and `python -m workers.main`; `sluice worker` does the same."""
    argparse.ArgumentParser(
        prog="sluicegate-worker",
        description="The Sluicegate worker: runs the deployment workflows and their activities "
        "until Ctrl-C or SIGTERM.",
        epilog="Settings come from SLUICEGATE_* environment variables and the TOML file in "
        "SLUICEGATE_CONFIG (docs/CLI.md, docs/OPERATIONS.md); `sluice worker` takes them as "
        "options.",
    ).parse_args(argv)
    try:
        settings = load_settings()
    except SluicegateError as err:
        configure_logging()
        logging.error("%s", err)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run(settings))
    except SluicegateError as err:  # e.g. metrics_address already in use
        logging.error("%s", err)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
