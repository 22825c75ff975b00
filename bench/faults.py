"""Faults: SIGKILL the worker or the Temporal server mid-deployment; nothing may be lost.

    python -m bench.faults [--scenario all] [--runs 10] [--seed 1]

Everything real on loopback: the Temporal dev server (SQLite file in the state directory),
Envoy, the v1 and v2 sample services, steady load through Envoy and Sluicegate workers as
separate processes (`python -m workers.main`), so a SIGKILL is a real crash. Each run
deploys v2 over v1 in two short stages (20% then 50%, 3 s each, a check every second).
Odd-numbered runs have a healthy canary (expected: `promoted`), even-numbered ones a
faulty canary answering 500 on 30% of requests (expected: `rolled_back`). Once a worker
has picked the deployment up, the harness waits a seeded random delay and injects the
fault:

- `worker-kill`: the only worker is SIGKILLed and a new worker process is started;
- `two-workers`: two workers share the task queue, one of them (seeded choice) is killed,
  no worker is started;
- `server-restart`: the dev server is SIGKILLed and started again on the same port and the
  same SQLite file; the worker process is left alone (it must reconnect by itself).

A run is `correct` when the workflow's result is the expected outcome and Envoy's real
admin state reads 0% canary with both arms on the canary's address (promoted) or on the
stable's (rolled back); `wrong` when it ended any other way; `lost` when no result came
within the timeout. Time to safe state: seconds from the fault to the workflow's result.
Exits non-zero if any run is wrong or lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from activities.routers import router_for
from bench import STATE_ROOT, until
from deploy.fronts import ERRORS_ONLY
from deploy.processes import Process
from deploy.sample_service import set_fault
from deploy.stack import LocalStack, Site
from deploy.temporal_server import start_dev_server
from sluicegate.contracts import RouterState
from sluicegate.deployments import start_deployment
from sluicegate.settings import Settings
from workers.client import connect
from workflows.canary import CanaryDeployment
from workflows.state import FINISHED, DeploymentResult

Scenario = Literal["worker-kill", "two-workers", "server-restart"]
SCENARIOS: tuple[Scenario, ...] = ("worker-kill", "two-workers", "server-restart")
Verdict = Literal["correct", "wrong", "lost"]
STATE_DIR = STATE_ROOT / "bench-faults"
STAGES = [
    {"name": "canary", "weight": 20, "bake": "PT3S"},
    {"name": "pilot", "weight": 50, "bake": "PT3S"},
]
FAULTY_ERROR_RATE = 0.3
# The fault lands this many seconds (uniform, seeded) after a worker picked the deployment
# up: about the length of a healthy deployment, or of a faulty one's way to its rollback.
FAULT_WINDOW = {False: 9.0, True: 2.0}  # keyed by "faulty canary"
RESULT_TIMEOUT = 120.0  # no result by then: the deployment is lost
RPS = 200


@dataclass
class Rig:
    """The stack under test: one dev server, one Envoy site, the worker processes."""

    stack: LocalStack
    server: Process
    ports: tuple[int, int]  # the dev server's gRPC and Web UI ports
    client: Client
    site: Site
    workers: list[Process] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports[0]}"

    def start_worker(self, task_queue: str) -> Process:
        worker = self.stack.worker(self.address, task_queue)
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Process]:
        self.workers = [w for w in self.workers if w.alive()]
        return self.workers

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    async def restart_server(self) -> None:
        """Start the dev server again on the same ports and SQLite file."""
        port, ui_port = self.ports
        stack = self.stack
        self.server = await asyncio.to_thread(
            start_dev_server, stack.state_dir, port, ui_port, stack.log_dir
        )
        stack.processes.append(self.server)


@dataclass(frozen=True)
class RunResult:
    """One run: where the fault landed, how the deployment ended, what Envoy reads."""

    scenario: Scenario
    number: int
    faulty: bool
    delay: float  # seconds from pick-up to the fault
    phase_at_fault: str  # the deployment's phase just before the fault
    verdict: Verdict
    outcome: str | None
    reason: str
    safe_after: float | None  # seconds from the fault to the workflow's result
    notes: str = ""

    @property
    def after_the_end(self) -> bool:
        """The fault landed after the deployment had already ended (no recovery to time)."""
        return self.phase_at_fault in FINISHED


@asynccontextmanager
async def open_rig(state_dir: Path, rps: float = RPS) -> AsyncIterator[Rig]:
    """Start the dev server and the site; stop every process started, by PID, at the end."""
    stack = LocalStack(state_dir)
    try:
        address, ui_port = await asyncio.to_thread(stack.temporal)
        server = stack.processes[-1]
        assert isinstance(server, Process)
        client = await connect(Settings(temporal_address=address))
        site = await asyncio.to_thread(Site, stack, "faults", rps)
        port = int(address.rsplit(":", 1)[1])
        yield Rig(stack, server, (port, ui_port), client, site)
    finally:
        stack.close()


async def run_scenario(rig: Rig, scenario: Scenario, runs: int, seed: int) -> list[RunResult]:
    """`runs` deployments, each with the scenario's fault; the workers stop at the end."""
    rng = random.Random(f"{seed}-{scenario}")
    task_queue = f"faults-{scenario}"
    results = []
    try:
        for number in range(1, runs + 1):
            results.append(await run_once(rig, scenario, number, task_queue, rng))
            say(row(results[-1]))
    finally:
        rig.stop_workers()
    return results


async def run_once(
    rig: Rig, scenario: Scenario, number: int, task_queue: str, rng: random.Random
) -> RunResult:
    """Deploy, inject the fault after a seeded delay, wait for the result, read Envoy."""
    faulty = number % 2 == 0
    site = rig.site
    await prepare(rig, scenario, task_queue, faulty)
    spec = site.spec(
        service=f"faults-{scenario}-{number}",
        stages=STAGES,
        failed_checks_tolerated=1,
        # Judged on errors only: the faults slow a busy 2-core machine, and a latency
        # limit would then judge the machine rather than the canary.
        metrics=ERRORS_ONLY,
    )
    handle = await start_deployment(rig.client, spec, task_queue)
    await until(lambda: answers(handle), f"a worker picks {handle.id} up", timeout=60)
    delay = rng.uniform(0, FAULT_WINDOW[faulty])
    await asyncio.sleep(delay)  # the fault's random timing: this sleep is the experiment
    phase = await phase_of(handle)
    fault_at = time.monotonic()
    notes = await inject(rig, scenario, task_queue, rng)
    ended = await result_within(handle, RESULT_TIMEOUT)
    safe_after = time.monotonic() - fault_at
    if ended is None:
        with contextlib.suppress(RPCError):
            await handle.terminate("lost: no result within the fault bench's timeout")
    notes += await restart_dead_workers(rig, task_queue)
    verdict, outcome, reason = judge(ended, await site.router_state(), site, faulty)
    return RunResult(
        scenario=scenario,
        number=number,
        faulty=faulty,
        delay=delay,
        phase_at_fault=phase,
        verdict=verdict,
        outcome=outcome,
        reason=reason,
        safe_after=None if ended is None else safe_after,
        notes=notes,
    )


async def prepare(rig: Rig, scenario: Scenario, task_queue: str, faulty: bool) -> None:
    """Envoy back on v1 at 0%, the canary's fault set, the scenario's workers polling."""
    site = rig.site
    home = RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )
    await router_for(site.spec().router).restore(home)
    error_rate = FAULTY_ERROR_RATE if faulty else 0.0
    await asyncio.to_thread(set_fault, site.canary.port, error_rate, 0.0)
    wanted = 2 if scenario == "two-workers" else 1
    while len(rig.live_workers()) < wanted:
        rig.start_worker(task_queue)
    await until(
        lambda: all_polling(rig.client, task_queue, rig.workers),
        f"{wanted} worker(s) poll {task_queue}",
        timeout=60,
    )


async def all_polling(client: Client, task_queue: str, workers: Sequence[Process]) -> bool:
    """True once every worker process polls both the workflow and the activity queue."""
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
        try:
            response = await client.workflow_service.describe_task_queue(request)
        except RPCError:
            return False
        pids = {poller.identity.split("@", 1)[0] for poller in response.pollers}
        if any(str(worker.pid) not in pids for worker in workers):
            return False
    return True


async def answers(handle: WorkflowHandle[CanaryDeployment, DeploymentResult]) -> bool:
    """True once a worker answers the deployment's status query."""
    return await phase_of(handle) != "unknown"


async def phase_of(handle: WorkflowHandle[CanaryDeployment, DeploymentResult]) -> str:
    """The deployment's phase, or `unknown` if no worker answers within 2 s."""
    try:
        status = await handle.query(CanaryDeployment.status, rpc_timeout=timedelta(seconds=2))
    except (RPCError, TimeoutError):
        return "unknown"
    return status.phase


async def inject(rig: Rig, scenario: Scenario, task_queue: str, rng: random.Random) -> str:
    """The scenario's fault; returns a note on what was done."""
    workers = rig.live_workers()
    if scenario == "worker-kill":
        kill(rig, workers[0])
        rig.start_worker(task_queue)
        return ""
    if scenario == "two-workers":
        victim = rng.randrange(len(workers))
        kill(rig, workers[victim])
        return f"killed worker {victim + 1} of 2"
    rig.server.kill()
    started = time.monotonic()
    await rig.restart_server()
    return f"server down {time.monotonic() - started:.1f} s"


def kill(rig: Rig, worker: Process) -> None:
    """SIGKILL a worker process; it is no longer one of the rig's workers."""
    worker.kill()
    rig.workers.remove(worker)


async def restart_dead_workers(rig: Rig, task_queue: str) -> str:
    """Workers that died without being killed (e.g. with the server) are noted and replaced."""
    died = len(rig.workers) - len(rig.live_workers())
    if died == 0:
        return ""
    for _ in range(died):
        rig.start_worker(task_queue)
    return f"; {died} worker(s) exited by themselves and were replaced"


async def result_within(
    handle: WorkflowHandle[CanaryDeployment, DeploymentResult], timeout: float
) -> DeploymentResult | BaseException | None:
    """The result, the failure, or None if nothing within `timeout` (server outages ride)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            return await asyncio.wait_for(handle.result(), left)
        except TimeoutError:
            return None
        except WorkflowFailureError as err:
            return err
        except RPCError:  # the server is down or restarting: ask again
            await asyncio.sleep(0.5)
    return None


def judge(
    ended: DeploymentResult | BaseException | None, state: RouterState, site: Site, faulty: bool
) -> tuple[Verdict, str | None, str]:
    """Correct, wrong or lost; with the outcome and reason (or what was wrong)."""
    if ended is None:
        return "lost", None, f"no result within {RESULT_TIMEOUT:g} s"
    if isinstance(ended, BaseException):
        return "wrong", "failed", f"workflow failed: {ended}; Envoy reads {state}"
    expected = "rolled_back" if faulty else "promoted"
    home = site.stable.address if faulty else site.canary.address
    safe = RouterState(canary_weight=0, stable_endpoints=(home,), canary_endpoints=(home,))
    if ended.outcome != expected:
        return "wrong", ended.outcome, f"expected {expected}: {ended.reason}"
    if state != safe:
        return "wrong", ended.outcome, f"Envoy reads {state}, expected {safe}"
    return "correct", ended.outcome, ended.reason


def row(r: RunResult) -> str:
    """One run as a line of text."""
    safe = "-" if r.safe_after is None else f"{r.safe_after:5.1f} s"
    canary = "faulty " if r.faulty else "healthy"
    return (
        f"{r.scenario:<14} run {r.number:>2} {canary} fault +{r.delay:4.1f} s in "
        f"{r.phase_at_fault:<12} -> {r.verdict:<7} {r.outcome or '-':<11} safe after {safe}"
        f"  ({r.reason[:90]}{'; ' + r.notes.strip('; ') if r.notes else ''})"
    )


TABLE_HEADER = (
    "| scenario | runs | correct | wrong | lost | outcomes | fault landed in (phase) "
    "| time to safe state, median | max |\n|---|---|---|---|---|---|---|---|---|"
)


def table_row(scenario: str, runs: Sequence[RunResult]) -> str:
    """A markdown table row summarising one scenario's runs."""
    verdicts = Counter(r.verdict for r in runs)
    outcomes = Counter(r.outcome or "none" for r in runs)
    phases = Counter(r.phase_at_fault for r in runs)
    times = [r.safe_after for r in runs if r.safe_after is not None and not r.after_the_end]
    median = f"{statistics.median(times):.1f} s" if times else "-"
    longest = f"{max(times):.1f} s" if times else "-"
    return (
        f"| {scenario} | {len(runs)} | {verdicts['correct']} | {verdicts['wrong']} "
        f"| {verdicts['lost']} | {_counts(outcomes)} | {_counts(phases)} | {median} | {longest} |"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in sorted(counter.items()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=10, help="runs per scenario (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults' timing")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    shutil.rmtree(args.state_dir, ignore_errors=True)
    results: dict[str, list[RunResult]] = {}
    async with open_rig(args.state_dir) as rig:
        for scenario in scenarios:
            results[scenario] = await run_scenario(rig, scenario, args.runs, args.seed)
    say(f"\n{TABLE_HEADER}")
    for scenario, runs in results.items():
        say(table_row(scenario, runs))
    every = [r for runs in results.values() for r in runs]
    bad = [r for r in every if r.verdict != "correct"]
    say(
        f"\n{len(every)} runs, {len(every) - len(bad)} correct, "
        f"{sum(r.verdict == 'wrong' for r in every)} wrong, "
        f"{sum(r.verdict == 'lost' for r in every)} lost (seed {args.seed})"
    )
    return 1 if bad else 0


def say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
