"""Scale: many deployments at once on one worker process (or two), each with its own
service, router and metric source.

    python -m bench.scale [--sizes 100,300,1000,2000] [--window 180] [--interval 10]
    python -m bench.scale --two-workers 1000     # N on two workers, then one killed

Real: the Temporal dev server, the worker process(es) (`python -m workers.main`), and one
Prometheus (Debian) scraping every `--scrape` seconds. Simulated: the platform
(bench/platform_sim.py), which holds the routing of every service behind our webhook
router contract and exports their traffic counters. Each deployment is a default-plan
spec (its first stage: 5% for 30 min, a check every `--interval`) with the webhook router
and the Prometheus source (docs/routers/webhook.md, docs/metrics/prometheus.md).

For each size, the bench starts deployments (at `--start-rate` per second) until that many
run, waits until every one is in its first stage, and then measures over `--window` s:
  - check lateness: every check reads its routing back first, so the platform sees each
    check arrive. A check's lateness is how much later it came than the deployment's most
    punctual check, in the interval's rhythm (the watcher schedules check k at
    start + k x interval): p50, p99, max over every check of every deployment;
  - worker CPU (share of one core, from /proc) and RSS, in all and per deployment;
  - Temporal actions (the server's own `action` counter) and history events (of a sample
    of deployments) per deployment-hour;
then breach to safety: `--faults` deployments, one after another, start failing (30% errors
at their canary, `--fault-error-rate`); the clock runs from the platform taking the fault
to it taking the rollback's 0% (scrape delay included).

With `--two-workers N`: N deployments on two worker processes polling the same task queue;
how the watchers and the CPU split between them, then one is killed (SIGKILL) and, for each
deployment it watched, the time until its next check (on the other worker). A watcher is
retried after its heartbeat timeout, max(3 x interval, 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from bench import STATE_ROOT, say, until
from deploy.processes import Process, free_port, http_ok, start_module, wait_until
from deploy.prometheus import Prometheus
from deploy.temporal_server import start_dev_server
from frontends.client.deployments import live_check, start_deployment
from sluicegate.contracts import DeploymentResult, RouterState
from sluicegate.settings import Settings
from sluicegate.spec import DeploymentSpec, parse_spec
from workers.client import connect

STATE_DIR = STATE_ROOT / "bench-scale"
TASK_QUEUE = "bench-scale"
FIRST_STAGE_WEIGHT = 5  # the default plan's
HISTORY_SAMPLE = 20  # deployments whose histories are counted
FAULT_BUDGET = 120.0  # seconds a faulted deployment has to reach 0%
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class SizeResult:
    deployments: int
    window_s: float
    checks: int
    lateness_p50_s: float
    lateness_p99_s: float
    lateness_max_s: float
    cpu_share: float  # of one core, the worker process
    rss_mib: float
    actions_per_deployment_hour: float
    heartbeats_per_deployment_hour: float
    events_per_deployment_hour: float
    # Share of one core of the rest of the rig: the dev server, Prometheus, the platform.
    server_cpu: float = float("nan")
    prometheus_cpu: float = float("nan")
    platform_cpu: float = float("nan")
    # Healthy deployments their own judge rolled back so far (replaced before the window).
    false_alarms: int = 0
    # A fault not rolled back within FAULT_BUDGET counts as inf.
    breach_to_safety_s: list[float] = field(default_factory=list[float])
    # From the breaching check's sample to the platform taking 0%: Sluicegate's own part.
    reaction_s: list[float] = field(default_factory=list[float])

    def passes(self, interval: float) -> bool:
        """p99 lateness ≤ 1 s and the median breach to safety ≤ interval + 1 s."""
        safety = self.breach_to_safety_s
        return self.lateness_p99_s <= 1 and (
            not safety or statistics.median(safety) <= interval + 1
        )


class Rig:
    """The dev server, the platform, Prometheus and the worker(s), stopped by PID."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.processes: list[Process] = []
        self.workers: list[Process] = []
        self.log_dir = STATE_DIR / "logs"
        self.temporal_port = free_port()
        self.server_metrics_port = free_port()
        self.platform_port = free_port()
        self.prometheus = Prometheus(STATE_DIR / "prometheus", self.log_dir)

    @property
    def platform(self) -> str:
        return f"http://127.0.0.1:{self.platform_port}"

    def start(self, workers: int, capacity: int) -> None:
        extra = ["--metrics-port", str(self.server_metrics_port), "--headless"]
        self.processes.append(
            start_dev_server(STATE_DIR, self.temporal_port, free_port(), self.log_dir, extra=extra)
        )
        platform = start_module(
            "platform",
            "bench.platform_sim",
            ["--port", str(self.platform_port), "--rps", str(self.args.rps)],
            self.log_dir,
        )
        self.processes.append(platform)
        wait_until(http_ok(f"{self.platform}/log"), platform)
        address = f"127.0.0.1:{self.platform_port}"
        self.prometheus.start({"platform": (address, "/metrics")}, f"{self.args.scrape:g}s")
        for number in range(1, workers + 1):
            self.start_worker(number, capacity)

    def start_worker(self, number: int, capacity: int) -> Process:
        env = {
            "SLUICEGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "SLUICEGATE_TASK_QUEUE": TASK_QUEUE,
            "SLUICEGATE_MAX_WATCHED_DEPLOYMENTS": str(capacity),
            "SLUICEGATE_LOG_LEVEL": "warning",
        }
        process = start_module(f"worker-{number}", "workers.main", [], self.log_dir, env)
        self.workers.append(process)
        return process

    def others(self) -> list[Process]:
        """The dev server, Prometheus and the platform, in that order."""
        assert self.prometheus.process is not None
        return [self.processes[0], self.prometheus.process, self.processes[1]]

    def stop(self) -> None:
        for process in [*self.workers, *reversed(self.processes)]:
            process.stop()
        self.prometheus.stop()


def spec_for(index: int, rig: Rig, interval: float) -> DeploymentSpec:
    """A default-plan spec for service `index`: webhook router, Prometheus source."""
    service = f"svc-{index:04d}"
    selector = 'service="$service",version="$version"'
    return parse_spec(
        {
            "service": service,
            "stable": {"version": "v1", "address": f"10.1.{index // 250}.{index % 250}:8080"},
            "canary": {"version": "v2", "address": f"10.2.{index // 250}.{index % 250}:8080"},
            "router": {"type": "webhook", "url": f"{rig.platform}/routing/{service}"},
            "analysis": {
                "interval": f"PT{interval:g}S",
                "source": {
                    "type": "prometheus",
                    "url": rig.prometheus.url,
                    "requests": f"sum(sim_requests_total{{{selector}}})",
                    "errors": f'sum(sim_requests_total{{{selector},code="5xx"}})',
                    "latency_buckets": (
                        f"sum by (le) (sim_request_duration_seconds_bucket{{{selector}}})"
                    ),
                },
            },
            "backup": {"directory": str(STATE_DIR / "backups")},
        }
    )


class Fleet:
    """The deployments started so far, and the platform's view of them."""

    def __init__(self, rig: Rig, client: Client, http: httpx.AsyncClient) -> None:
        self.rig = rig
        self.client = client
        self.http = http
        self.started = 0
        self.running: list[str] = []  # services whose deployment should be watching
        self.false_alarms: list[str] = []  # healthy ones rolled back before any fault

    async def grow_to(self, size: int) -> None:
        """Start deployments until `size` run, paced, then wait until all are at 5%. One
        that its own judge rolls back meanwhile (a healthy canary: a false alarm) is
        counted and replaced."""
        while len(self.running) < size:
            await self._start(size - len(self.running))
            say(f"  {size} deployments started; waiting until each is in its first stage")
            await until(self.settled, "every deployment at 5%", timeout=900, poll=2)

    async def _start(self, count: int) -> None:
        pause = 1 / self.rig.args.start_rate
        for _ in range(count):
            spec = spec_for(self.started, self.rig, self.rig.args.interval)
            self.started += 1
            seed = RouterState(
                canary_weight=0, stable_endpoints=spec.stable.endpoints, canary_endpoints=()
            )
            response = await self.http.post(
                f"{self.rig.platform}/routing/{spec.service}",
                params={"stable": "v1", "canary": "v2"},
                content=seed.model_dump_json(),
            )
            response.raise_for_status()
            await start_deployment(self.client, spec, TASK_QUEUE)
            self.running.append(spec.service)
            await asyncio.sleep(pause)

    async def settled(self) -> bool:
        """Every running deployment at 5%; drops (and counts) those rolled back."""
        log = await self.log()
        for name in [name for name in self.running if _rolled_back(log[name])]:
            self.running.remove(name)
            self.false_alarms.append(name)
            say(f"  {name} rolled back by its own judge, its canary healthy (a false alarm)")
        return all(_weight(log[name]) == FIRST_STAGE_WEIGHT for name in self.running)

    async def log(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.rig.platform}/log", timeout=60)
        return response.json()


def _rolled_back(entry: dict[str, Any]) -> bool:
    """Shifted to the first stage once and back to 0% since."""
    weights = [weight for _, weight in entry["writes"]]
    return FIRST_STAGE_WEIGHT in weights and weights[-1] == 0


def _weight(entry: dict[str, Any]) -> int:
    """The last weight posted for a service (0 before any)."""
    return entry["writes"][-1][1] if entry["writes"] else 0


def lateness(
    entries: Sequence[dict[str, Any]], t0: float, t1: float, interval: float
) -> list[float]:
    """Each check's lateness, for checks in [t0, t1]: see the module's docstring."""
    found: list[float] = []
    for entry in entries:
        shifted = max((t for t, _ in entry["writes"]), default=0.0)
        reads = [t for t in entry["reads"] if t0 <= t <= t1 and t > shifted + interval / 2]
        if len(reads) < 2:
            continue
        offsets, k = [reads[0]], 0
        for before, now in itertools.pairwise(reads):
            k += max(1, round((now - before) / interval))
            offsets.append(now - k * interval)
        punctual = min(offsets)
        found.extend(offset - punctual for offset in offsets)
    return found


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(process: Process) -> float:
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mib(process: Process) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def server_counters(http: httpx.AsyncClient, port: int) -> tuple[float, float]:
    """(actions, heartbeat RPCs) the dev server counted in the default namespace."""
    text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=30)).text
    actions = heartbeats = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("namespace") != "default":
                continue
            if sample.name == "action_total" or sample.name == "action":
                actions += sample.value
            if (
                sample.name in ("service_requests", "service_requests_total")
                and sample.labels.get("operation") == "RecordActivityTaskHeartbeat"
                and sample.labels.get("service_name") == "frontend"
            ):
                heartbeats += sample.value
    return actions, heartbeats


async def history_events(client: Client, services: Sequence[str]) -> int:
    total = 0
    for service in services:
        history = await client.get_workflow_handle(f"deploy-{service}").fetch_history()
        total += len(history.events)
    return total


async def measure(fleet: Fleet, rig: Rig, http: httpx.AsyncClient) -> SizeResult:
    """One window at the fleet's current size, then its breach-to-safety runs."""
    args = rig.args
    size = len(fleet.running)
    await asyncio.sleep(args.interval)  # every watcher past its first check
    sample = random.Random(size).sample(fleet.running, min(HISTORY_SAMPLE, size))
    t0 = time.time()
    cpu0 = sum(cpu_seconds(w) for w in rig.workers)
    others0 = [cpu_seconds(p) for p in rig.others()]
    actions0, beats0 = await server_counters(http, rig.server_metrics_port)
    events0 = await history_events(fleet.client, sample)
    await asyncio.sleep(args.window)
    t1 = time.time()
    cpu1 = sum(cpu_seconds(w) for w in rig.workers)
    others = [
        (cpu_seconds(p) - before) / (t1 - t0)
        for p, before in zip(rig.others(), others0, strict=True)
    ]
    actions1, beats1 = await server_counters(http, rig.server_metrics_port)
    events1 = await history_events(fleet.client, sample)
    log = await fleet.log()
    late = lateness([log[name] for name in fleet.running], t0, t1, args.interval)
    hours = (t1 - t0) / 3600
    result = SizeResult(
        deployments=size,
        window_s=round(t1 - t0, 1),
        checks=len(late),
        lateness_p50_s=round(quantile(late, 0.5), 3),
        lateness_p99_s=round(quantile(late, 0.99), 3),
        lateness_max_s=round(max(late, default=float("nan")), 3),
        cpu_share=round((cpu1 - cpu0) / (t1 - t0), 3),
        rss_mib=round(sum(rss_mib(w) for w in rig.workers), 1),
        actions_per_deployment_hour=round((actions1 - actions0) / size / hours, 1),
        heartbeats_per_deployment_hour=round((beats1 - beats0) / size / hours, 1),
        events_per_deployment_hour=round((events1 - events0) / len(sample) / hours, 2),
        server_cpu=round(others[0], 2),
        prometheus_cpu=round(others[1], 2),
        platform_cpu=round(others[2], 2),
    )
    await fleet.settled()  # a false alarm in the window is no fault's to time
    result.false_alarms = len(fleet.false_alarms)
    report(result, args.interval)
    for _ in range(args.faults):
        total, reaction = await breach_to_safety(fleet, http, args.interval, args.fault_error_rate)
        say(f"  breach to safety {total} s (from the breaching check: {reaction} s)")
        result.breach_to_safety_s.append(total)
        result.reaction_s.append(reaction)
    return result


async def breach_to_safety(
    fleet: Fleet, http: httpx.AsyncClient, interval: float, error_rate: float
) -> tuple[float, float]:
    """Fault one running deployment's canary (`error_rate` of its requests fail) at a random
    moment of its check rhythm; the seconds until the platform takes the rollback's 0%,
    from the fault and from the breaching check's sample (the rollback's evidence)."""
    service = fleet.running.pop(random.randrange(len(fleet.running)))
    await asyncio.sleep(random.uniform(0, interval))
    response = await http.post(
        f"{fleet.rig.platform}/fault/{service}", params={"error_rate": error_rate}
    )
    response.raise_for_status()

    async def rolled_back() -> bool:
        entry = (await fleet.log())[service]
        return bool(entry["faults"]) and _weight(entry) == 0

    try:
        # The platform keeps the times itself: polling its large log often only loads the rig.
        await until(rolled_back, f"{service} rolled back", timeout=FAULT_BUDGET, poll=2)
    except TimeoutError:
        check = await live_check(fleet.client, f"deploy-{service}")
        seen = check.describe() if check is not None else "no live check"
        say(f"  {service} not rolled back {FAULT_BUDGET:g} s after its fault: {seen}")
        return math.inf, math.inf
    entry = (await fleet.log())[service]
    fault = entry["faults"][-1]
    safe = min(t for t, weight in entry["writes"] if t >= fault and weight == 0)
    handle = fleet.client.get_workflow_handle(f"deploy-{service}", result_type=DeploymentResult)
    evidence = (await handle.result()).evidence
    checked = evidence.at.timestamp() if evidence is not None else float("nan")
    return round(safe - fault, 3), round(safe - checked, 3)


def report(result: SizeResult, interval: float) -> None:
    per = result.deployments
    say(
        f"N={per}: {result.checks} checks in {result.window_s} s; lateness p50 "
        f"{result.lateness_p50_s} s, p99 {result.lateness_p99_s} s, max "
        f"{result.lateness_max_s} s; worker CPU {result.cpu_share:.2f} of a core "
        f"({1000 * result.cpu_share / per:.2f} per 1,000 deployments), RSS {result.rss_mib} MiB "
        f"({1024 * result.rss_mib / per:.0f} KiB each); per deployment-hour: "
        f"{result.actions_per_deployment_hour} actions, "
        f"{result.heartbeats_per_deployment_hour} heartbeats, "
        f"{result.events_per_deployment_hour} history events; CPU of the dev server "
        f"{result.server_cpu}, Prometheus {result.prometheus_cpu}, the platform "
        f"{result.platform_cpu}; healthy deployments rolled back so far: {result.false_alarms}"
    )


async def run_sizes(args: argparse.Namespace) -> list[SizeResult]:
    rig = Rig(args)
    results: list[SizeResult] = []
    try:
        rig.start(workers=1, capacity=max(args.sizes) + 10)
        client = await connect(Settings(temporal_address=f"127.0.0.1:{rig.temporal_port}"))
        async with httpx.AsyncClient(timeout=30) as http:
            fleet = Fleet(rig, client, http)
            for size in args.sizes:
                say(f"== {size} deployments")
                await fleet.grow_to(size)
                result = await measure(fleet, rig, http)
                verdict = "PASS" if result.passes(args.interval) else "FAIL"
                say(f"N={size}: {verdict}")
                results.append(result)
                for worker in rig.workers:
                    if not worker.alive():
                        raise RuntimeError(f"worker died:\n{worker.tail()}")
    finally:
        rig.stop()
    return results


@dataclass
class TwoWorkersResult:
    deployments: int
    watchers: tuple[int, int]  # watched by worker 1, worker 2
    cpu_share: tuple[float, float]
    moved: int  # deployments of the killed worker checked again on the other
    resumed_median_s: float  # kill -> their next check
    resumed_max_s: float
    not_resumed: int


async def watchers_by_worker(client: Client, services: Sequence[str]) -> dict[str, str]:
    """Service -> the identity (`pid@host`) of the worker running its watcher."""
    found: dict[str, str] = {}
    gate = asyncio.Semaphore(20)

    async def one(service: str) -> None:
        async with gate:
            description = await client.get_workflow_handle(f"deploy-{service}").describe()
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == "watch_health":
                found[service] = pending.last_worker_identity

    await asyncio.gather(*(one(service) for service in services))
    return found


async def run_two_workers(args: argparse.Namespace) -> TwoWorkersResult:
    rig = Rig(args)
    size = args.two_workers
    try:
        rig.start(workers=2, capacity=size + 10)
        client = await connect(Settings(temporal_address=f"127.0.0.1:{rig.temporal_port}"))
        async with httpx.AsyncClient(timeout=30) as http:
            fleet = Fleet(rig, client, http)
            say(f"== {size} deployments on two workers")
            await fleet.grow_to(size)
            await asyncio.sleep(args.interval)
            cpu0 = [cpu_seconds(w) for w in rig.workers]
            t0 = time.time()
            await asyncio.sleep(args.window)
            elapsed = time.time() - t0
            shares = [
                (cpu_seconds(w) - c) / elapsed for w, c in zip(rig.workers, cpu0, strict=True)
            ]
            owners = await watchers_by_worker(client, fleet.running)
            pids = [str(w.pid) for w in rig.workers]
            count = [sum(1 for o in owners.values() if o.startswith(f"{pid}@")) for pid in pids]
            victims = [s for s, o in owners.items() if o.startswith(f"{pids[1]}@")]
            killed_at = time.time()
            rig.workers[1].kill()
            say(f"  worker 2 (pid {pids[1]}) killed; {len(victims)} deployments to move")
            # Every victim is checked again once its watcher is retried elsewhere.
            budget = max(3 * args.interval, 10) + 3 * args.interval + 60

            def resumed(log: dict[str, Any]) -> dict[str, float]:
                return {
                    s: min(t for t in log[s]["reads"] if t > killed_at + 0.5)
                    for s in victims
                    if any(t > killed_at + 0.5 for t in log[s]["reads"])
                }

            async def all_resumed() -> bool:
                return len(resumed(await fleet.log())) == len(victims)

            with contextlib.suppress(TimeoutError):
                await until(all_resumed, "every victim checked again", budget, poll=1)
            after = resumed(await fleet.log())
            delays = [t - killed_at for t in after.values()]
    finally:
        rig.stop()
    return TwoWorkersResult(
        deployments=size,
        watchers=(count[0], count[1]),
        cpu_share=(round(shares[0], 3), round(shares[1], 3)),
        moved=len(after),
        resumed_median_s=round(statistics.median(delays), 2) if delays else float("nan"),
        resumed_max_s=round(max(delays), 2) if delays else float("nan"),
        not_resumed=len(victims) - len(after),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,300,1000,2000", help="comma-separated N")
    parser.add_argument("--window", type=float, default=180.0, help="seconds measured per N")
    parser.add_argument("--interval", type=float, default=10.0, help="check interval, s")
    parser.add_argument("--scrape", type=float, default=2.0, help="Prometheus scrape, s")
    parser.add_argument("--rps", type=float, default=50.0, help="requests/s per service")
    parser.add_argument("--start-rate", type=float, default=20.0, help="starts per second")
    parser.add_argument("--faults", type=int, default=3, help="breach runs per N")
    parser.add_argument(
        "--fault-error-rate",
        type=float,
        default=0.3,
        help="share of a faulted canary's requests that fail",
    )
    parser.add_argument("--two-workers", type=int, default=0, metavar="N", help="see above")
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    # SIGTERM (a `timeout`, a CI job stopped) unwinds like Ctrl-C: the rig stops what it
    # started, by PID.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    if args.two_workers:
        two = asyncio.run(run_two_workers(args))
        say(f"two workers: {asdict(two)}")
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / "two_workers.json").write_text(json.dumps(asdict(two), indent=1))
        return
    results = asyncio.run(run_sizes(args))
    (STATE_DIR / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    passing = [r.deployments for r in results if r.passes(args.interval)]
    say(f"largest N that passes: {max(passing, default=0)}  (results in {STATE_DIR})")


if __name__ == "__main__":
    main()
