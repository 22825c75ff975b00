"""Breach to safety: from the canary starting to fail to every Envoy sending it 0% of traffic.

    python -m bench.breach_to_safety [--runs 10] [--interval 1] [--seed 1] [--scenarios ...]

Everything real on loopback: the Temporal dev server, an in-process worker, Envoy, the
sample services and steady load through Envoy. Each run deploys v2 over v1, waits for
three health checks, then a random part of the interval, and injects a fault into every
v2 instance (`set_fault`). The clock runs from the first `set_fault` returning until the
LAST Envoy's admin /runtime (each polled every 10 ms) reads a 0% canary weight; then each
Envoy's stable cluster must still hold v1's instances.

Scenarios, each on its own rig (bench/fleet_rig.py):
  errors, latency           one Envoy, v1 and v2 one instance each, 300 req/s; fault at 10%
  fleet-errors, -latency    three Envoys (`router.instances`), three instances of each
                            version (`addresses`), 240 + 30 + 30 req/s; fault at 10%
  guard-errors, fleet-guard one short stage at 10%, then the guard (`post_promotion.watch`
                            PT10M): fault at 100% in phase `guarding`, after three checks
Faults: `errors` 500 on 30% of requests, `latency` +250 ms on every response.
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

from activities.routers import router_for
from bench import STATE_ROOT, event_name, event_seconds, say, until
from bench.fleet_rig import EnvoyFleet, Rig, SingleEnvoy
from deploy.sample_service import set_fault
from deploy.stack import LocalStack
from frontends.client.deployments import live_check, start_deployment
from sluicegate.contracts import ROLLBACK
from sluicegate.settings import Settings
from sluicegate.spec import EnvoyRouter
from workers.client import connect
from workers.main import build_worker
from workflows.canary import CanaryDeployment

STATE_DIR = STATE_ROOT / "bench-breach"
TASK_QUEUE = "bench-breach"
WEIGHT = 10
CHECKS_BEFORE_FAULT = 3
ENVOY_POLL = 0.01  # seconds between /runtime reads
GUARD = timedelta(minutes=10)  # post_promotion.watch of the guard scenarios
GUARD_STAGE = "post-promotion"  # the guard's stage name in checks and the status
# Fault -> (error_rate, delay_ms) injected into every canary instance.
FAULTS: dict[str, tuple[float, float]] = {"errors": (0.3, 0.0), "latency": (0.0, 250.0)}


@dataclass(frozen=True)
class Scenario:
    rig: str  # "single" (one Envoy) or "fleet" (three)
    fault: str  # a key of FAULTS
    guard: bool  # the fault comes at 100%, in phase guarding, instead of at 10%


SCENARIOS: dict[str, Scenario] = {
    "errors": Scenario("single", "errors", guard=False),
    "latency": Scenario("single", "latency", guard=False),
    "fleet-errors": Scenario("fleet", "errors", guard=False),
    "fleet-latency": Scenario("fleet", "latency", guard=False),
    "guard-errors": Scenario("single", "errors", guard=True),
    "fleet-guard": Scenario("fleet", "errors", guard=True),
}


@dataclass(frozen=True)
class Run:
    """One run's timings in seconds from the fault, and what the judge flagged."""

    scenario: str
    number: int
    wait: float  # random wait after check 3 was seen, before the fault (fraction of interval)
    check: float  # fault -> the breaching check's sample
    rolling_back: float  # fault -> rollback scheduled (the workflow's phase is rolling_back)
    safe: float  # fault -> the last Envoy reads 0% canary
    first_safe: float  # fault -> the first Envoy reads 0% canary
    breached: tuple[str, ...]
    window_requests: int  # canary requests in the breaching check (since the one before)
    events: int  # length of the rolled-back deployment's history
    verdict: str  # the breaching check's verdict, in brief


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.breach_to_safety",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between checks (default 1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault's timing")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=list(SCENARIOS),
        default=list(SCENARIOS),
        help="default: all",
    )
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
                rig = open_rig(stack, scenario)
                try:
                    await rig.at_rest()
                    for number in range(1, args.runs + 1):
                        one = await measure(client, rig, scenario, number, interval, rng)
                        runs.append(one)
                        say(_row(one))
                finally:
                    rig.stop()
                    for line in rig.load_summaries():
                        say(f"{scenario}: {line}")
    finally:
        stack.close()
    return 0 if summarize(runs, args.interval) else 1


def open_rig(stack: LocalStack, scenario: str) -> Rig:
    name = f"bench-{scenario}"
    if SCENARIOS[scenario].rig == "fleet":
        return EnvoyFleet(stack, name)
    return SingleEnvoy(stack, name)


async def measure(
    client: Client,
    rig: Rig,
    scenario: str,
    number: int,
    interval: timedelta,
    rng: random.Random,
) -> Run:
    """Deploy, wait for steady checks, inject the fault, time the way back to 0%."""
    guard = SCENARIOS[scenario].guard
    bake = interval * 3 if guard else timedelta(minutes=10)
    stages = [{"name": "canary", "weight": WEIGHT, "bake": bake.total_seconds()}]
    spec = rig.spec(f"bench-{scenario}-{number}", stages, interval, GUARD)
    handle = await start_deployment(client, spec, TASK_QUEUE)
    weight, phase, stage = (100, "guarding", GUARD_STAGE) if guard else (WEIGHT, None, "canary")

    async def watching() -> bool:
        status = await handle.query(CanaryDeployment.status)
        if status.phase in ("rolled_back", "promoted", "failed"):
            ended = f"{handle.id} ended {status.phase} before the fault"
            raise RuntimeError(f"{ended}: {status.reason}")
        check = await live_check(client, handle.id)
        checks = check.number if check is not None and check.stage == stage else 0
        return (
            status.canary_weight == weight
            and (phase is None or status.phase == phase)
            and checks >= CHECKS_BEFORE_FAULT
        )

    where = f"{weight}%{f' ({phase})' if phase else ''}"
    await until(watching, f"{handle.id} at {where} with {CHECKS_BEFORE_FAULT} checks")
    wait = rng.random()
    await asyncio.sleep(wait * interval.total_seconds())
    error_rate, delay_ms = FAULTS[SCENARIOS[scenario].fault]
    try:
        fault_at = await inject(rig.canary_ports, error_rate, delay_ms)
        safe_at = await zero_percent_at(rig.instances)
        await old_fleet_serves(rig, handle.id)
        result = await handle.result()
    finally:
        await inject(rig.canary_ports, 0.0, 0.0)
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
        safe=max(safe_at) - fault_at,
        first_safe=min(safe_at) - fault_at,
        breached=tuple(m.metric for m in result.evidence.verdict.breaches),
        window_requests=result.evidence.verdict.canary_requests or 0,
        events=len(events),
        verdict=result.evidence.verdict.brief(),
    )


async def inject(ports: Sequence[int], error_rate: float, delay_ms: float) -> float:
    """Set the fault on every instance at once; the Unix time the FIRST one took it (so
    the clock starts as soon as any canary instance is bad)."""
    first: list[float] = []

    def one(port: int) -> None:
        set_fault(port, error_rate, delay_ms)
        first.append(time.time())

    await asyncio.gather(*(asyncio.to_thread(one, port) for port in ports))
    return min(first)


async def zero_percent_at(instances: Sequence[EnvoyRouter], timeout: float = 60) -> list[float]:
    """Poll every Envoy's /runtime, each every 10 ms, until its canary weight reads 0;
    the Unix time each first did."""
    deadline = time.monotonic() + timeout

    async def one(http: httpx.AsyncClient, instance: EnvoyRouter) -> float:
        while time.monotonic() < deadline:
            runtime = (await http.get(f"{instance.admin_url}/runtime")).json()
            entry = runtime.get("entries", {}).get(instance.runtime_key)
            if entry is None or entry.get("final_value") == "0":
                return time.time()
            await asyncio.sleep(ENVOY_POLL)
        raise TimeoutError(
            f"Envoy {instance.label()} at {instance.admin_url} still sends traffic to the "
            f"canary after {timeout} s"
        )

    async with httpx.AsyncClient(timeout=2) as http:
        return list(await asyncio.gather(*(one(http, each) for each in instances)))


async def old_fleet_serves(rig: Rig, workflow_id: str) -> None:
    """Every Envoy at 0% canary with its stable cluster at v1's instances: the old fleet
    serves all traffic (the guard must not have pointed stable at v2)."""
    for instance in rig.instances:
        state = await router_for(instance).read_state()
        if state.canary_weight != 0 or sorted(state.stable_endpoints) != sorted(
            rig.stable_endpoints
        ):
            raise RuntimeError(
                f"{workflow_id}: {instance.label()} reads {state.canary_weight}% canary, "
                f"stable at {list(state.stable_endpoints)}, not v1 {list(rig.stable_endpoints)}"
            )


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
    say(
        f"\nSummary (seconds from fault to the last Envoy at 0% canary; "
        f"target median <= {target:g} s)"
    )
    say(
        f"{'scenario':<13} {'runs':>4} {'median':>7} {'p90':>7} {'p95':>7} {'max':>7}   "
        f"{'detect':>7} {'decide':>7} {'restore':>7} {'spread':>7}   target"
    )
    ok = True
    for scenario in dict.fromkeys(r.scenario for r in runs):
        mine = [r for r in runs if r.scenario == scenario]
        safe = [r.safe for r in mine]
        detect = statistics.median(r.check for r in mine)
        decide = statistics.median(r.rolling_back - r.check for r in mine)
        restore = statistics.median(r.safe - r.rolling_back for r in mine)
        spread = statistics.median(r.safe - r.first_safe for r in mine)
        passed = statistics.median(safe) <= target
        ok = ok and passed
        say(
            f"{scenario:<13} {len(mine):>4} {statistics.median(safe):>7.3f} "
            f"{percentile(safe, 0.9):>7.3f} {percentile(safe, 0.95):>7.3f} {max(safe):>7.3f}   "
            f"{detect:>7.3f} {decide:>7.3f} {restore:>7.3f} {spread:>7.3f}   "
            f"{'PASS' if passed else 'FAIL'}"
        )
    say(
        "detect = fault -> sample of the breaching check; decide = -> rollback scheduled "
        "(phase rolling_back);\nrestore = -> the last Envoy reads 0%; spread = first Envoy "
        "at 0% -> last. Medians of each part,\nso they need not add up to the median total."
    )
    return ok


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0.9, 0.95), interpolated between the nearest ranks."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _row(r: Run) -> str:
    return (
        f"{r.scenario:<13} run {r.number:>2}: fault +{r.wait:.2f} interval -> "
        f"check {r.check:6.3f} s, rolling_back {r.rolling_back:6.3f} s, "
        f"Envoy 0% {r.first_safe:6.3f}-{r.safe:6.3f} s  ({', '.join(r.breached)}; "
        f"{r.window_requests} canary requests in that check; {r.events} events)\n"
        f"    {r.verdict}"
    )


def main(argv: list[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
