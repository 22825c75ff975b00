"""Breach to safety: from the canary starting to fail to Envoy sending it 0% of traffic.

    python -m bench.breach_to_safety [--runs 10] [--interval 1] [--seed 1]

Everything real on loopback: the Temporal dev server, an in-process worker, Envoy, the
sample services and 300 requests/s through Envoy. Each run deploys v2 over v1 at 10% with
a 10-minute bake, waits for three health checks, then a random part of the interval, and
injects a fault into v2 (`set_fault`). The clock runs from `set_fault` returning until
Envoy's admin /runtime (polled every 10 ms) reads a 0% canary weight. Scenarios: `errors`
(500 on 30% of requests) and `latency` (+250 ms on every response), each on its own Envoy.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from activities.routers.envoy import DEFAULT_RUNTIME_KEY
from bench import STATE_ROOT, event_name, event_seconds, load_summary, say, until
from deploy.sample_service import set_fault
from deploy.stack import LocalStack, Site
from frontends.client.deployments import live_check, start_deployment
from sluicegate.contracts import ROLLBACK
from sluicegate.settings import Settings
from workers.client import connect
from workers.main import build_worker
from workflows.canary import CanaryDeployment

STATE_DIR = STATE_ROOT / "bench-breach"
TASK_QUEUE = "bench-breach"
WEIGHT = 10
CHECKS_BEFORE_FAULT = 3
ENVOY_POLL = 0.01  # seconds between /runtime reads
# Scenario -> (error_rate, delay_ms) injected into the canary.
SCENARIOS: dict[str, tuple[float, float]] = {"errors": (0.3, 0.0), "latency": (0.0, 250.0)}


@dataclass(frozen=True)
class Run:
    """One run's timings in seconds from the fault, and what the judge flagged."""

    scenario: str
    number: int
    wait: float  # random wait after check 3 was seen, before the fault (fraction of interval)
    check: float  # fault -> the breaching check's sample
    rolling_back: float  # fault -> rollback scheduled (the workflow's phase is rolling_back)
    safe: float  # fault -> Envoy reads 0% canary
    breached: tuple[str, ...]
    window_requests: int  # canary requests in the breaching check's window
    events: int  # length of the rolled-back deployment's history


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.breach_to_safety", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between checks (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault's timing")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    stack = LocalStack(STATE_DIR)
    rng = random.Random(args.seed)
    interval = timedelta(seconds=args.interval)
    try:
        address, _ = stack.temporal()
        client = await connect(Settings(temporal_address=address))
        runs: list[Run] = []
        async with build_worker(client, TASK_QUEUE):
            for scenario in args.scenarios:
                site = Site(stack, f"bench-{scenario}")
                try:
                    for number in range(1, args.runs + 1):
                        one = await measure(client, site, scenario, number, interval, rng)
                        runs.append(one)
                        say(_row(one))
                finally:
                    site.stop()
                    say(f"{scenario}: load {load_summary(site.load.tail(5))}")
    finally:
        stack.close()
    return 0 if summarize(runs, args.interval) else 1


async def measure(
    client: Client,
    site: Site,
    scenario: str,
    number: int,
    interval: timedelta,
    rng: random.Random,
) -> Run:
    """Deploy, wait for steady checks, inject the fault, time the way back to 0%."""
    stages = [{"name": "canary", "weight": WEIGHT, "bake": "PT10M"}]
    spec = site.spec(service=f"bench-{scenario}-{number}", stages=stages, interval=interval)
    handle = await start_deployment(client, spec, TASK_QUEUE)

    async def watching() -> bool:
        status = await handle.query(CanaryDeployment.status)
        check = await live_check(client, handle.id)
        checks = check.number if check is not None else 0
        return status.canary_weight == WEIGHT and checks >= CHECKS_BEFORE_FAULT

    await until(watching, f"{handle.id} at {WEIGHT}% with {CHECKS_BEFORE_FAULT} checks")
    wait = rng.random()
    await asyncio.sleep(wait * interval.total_seconds())
    error_rate, delay_ms = SCENARIOS[scenario]
    await asyncio.to_thread(set_fault, site.canary.port, error_rate, delay_ms)
    fault_at = time.time()
    safe_at = await zero_percent_at(site.envoy.admin_url)
    try:
        result = await handle.result()
    finally:
        await asyncio.to_thread(set_fault, site.canary.port, 0.0, 0.0)
    if result.outcome != "rolled_back" or result.evidence is None:
        raise RuntimeError(f"{handle.id} ended {result.outcome}: {result.reason}")
    events = (await handle.fetch_history()).events
    rolling_back_at = rollback_scheduled_at(events)
    if rolling_back_at < fault_at:
        raise RuntimeError(f"{handle.id} rolled back before the fault: {result.reason}")
    return Run(
        scenario=scenario,
        number=number,
        wait=wait,
        check=result.evidence.at.timestamp() - fault_at,
        rolling_back=rolling_back_at - fault_at,
        safe=safe_at - fault_at,
        breached=tuple(m.metric for m in result.evidence.verdict.breaches),
        window_requests=max(
            (m.requests for m in result.evidence.verdict.results if m.window == "check"),
            default=0,
        ),
        events=len(events),
    )


async def zero_percent_at(admin_url: str, timeout: float = 60) -> float:
    """Poll Envoy's /runtime until the canary weight reads 0; the Unix time it did."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=admin_url, timeout=2) as http:
        while time.monotonic() < deadline:
            entry = (await http.get("/runtime")).json().get("entries", {}).get(DEFAULT_RUNTIME_KEY)
            if entry is None or entry.get("final_value") == "0":
                return time.time()
            await asyncio.sleep(ENVOY_POLL)
    raise TimeoutError(f"Envoy at {admin_url} still sends traffic to the canary after {timeout} s")


def rollback_scheduled_at(events: Sequence[HistoryEvent]) -> float:
    """When the workflow scheduled its rollback: the same task that set `rolling_back`."""
    for event in events:
        attributes = event.activity_task_scheduled_event_attributes
        if event_name(event) == "ActivityTaskScheduled" and (
            attributes.activity_type.name == ROLLBACK
        ):
            return event_seconds(event)
    raise RuntimeError("no rollback in the history")


def summarize(runs: list[Run], interval: float) -> bool:
    """Print the summary table; True if every scenario meets the target at the median."""
    target = interval + 1.0
    say(f"\nSummary (seconds from fault to Envoy at 0% canary; target median <= {target:g} s)")
    say(
        f"{'scenario':<9} {'runs':>4} {'median':>7} {'p95':>7} {'max':>7}   "
        f"{'detect':>7} {'decide':>7} {'restore':>7}   target"
    )
    ok = True
    for scenario in dict.fromkeys(r.scenario for r in runs):
        mine = [r for r in runs if r.scenario == scenario]
        safe = [r.safe for r in mine]
        detect = statistics.median(r.check for r in mine)
        decide = statistics.median(r.rolling_back - r.check for r in mine)
        restore = statistics.median(r.safe - r.rolling_back for r in mine)
        passed = statistics.median(safe) <= target
        ok = ok and passed
        say(
            f"{scenario:<9} {len(mine):>4} {statistics.median(safe):>7.3f} {p95(safe):>7.3f} "
            f"{max(safe):>7.3f}   {detect:>7.3f} {decide:>7.3f} {restore:>7.3f}   "
            f"{'PASS' if passed else 'FAIL'}"
        )
    say(
        "detect = fault -> sample of the breaching check; decide = -> rollback scheduled "
        "(phase rolling_back);\nrestore = -> Envoy reads 0%. Medians of each part, so they "
        "need not add up to the median total."
    )
    return ok


def p95(values: list[float]) -> float:
    """95th percentile, interpolated between the nearest ranks."""
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _row(r: Run) -> str:
    return (
        f"{r.scenario:<8} run {r.number:>2}: fault +{r.wait:.2f} interval -> "
        f"check {r.check:6.3f} s, rolling_back {r.rolling_back:6.3f} s, "
        f"Envoy 0% {r.safe:6.3f} s  ({', '.join(r.breached)}; "
        f"{r.window_requests} canary requests in that check; {r.events} events)"
    )


def main(argv: list[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
