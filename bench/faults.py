"""Faults mid-deployment on the real stack; nothing may be lost or left half-way.

    python -m bench.faults [--scenario all | NAME ...] [--runs 10] [--seed 1]

Everything is real and on loopback (see bench.fault_rig): the Temporal dev server, Envoy,
the v1 and v2 sample services, steady load through Envoy, and Sluicegate workers as
separate processes, so a SIGKILL is a real crash. Each run deploys v2 over v1 in two short
stages (20% then 50%, 3 s each, a check every second). Odd-numbered runs have a healthy
canary, even-numbered ones a faulty canary answering 500 on 30% of requests. Once a worker
has picked the deployment up, the scenario (bench.fault_scenarios) injects its fault.

A run is `correct` when the workflow's result is the outcome the scenario expects (a
faulty canary always `rolled_back`) and Envoy's real admin state reads 0% canary with both
arms on the canary's address (promoted) or on the stable's (rolled back); `wrong` when it
ended any other way; `lost` when no result came within the timeout. Time to safe state:
seconds from the fault to the workflow's result. Exits non-zero if any run is wrong or lost.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from activities.routers import router_for
from bench import STATE_ROOT, say, until
from bench.fault_rig import Handle, Rig, Run, all_polling, open_rig, phase_of
from bench.fault_scenarios import SCENARIOS, Scenario
from deploy.fronts import ERRORS_ONLY
from deploy.sample_service import set_fault
from deploy.stack import Site
from frontends.client.deployments import start_deployment
from sluicegate.contracts import FINISHED, DeploymentResult, RouterState
from sluicegate.spec import DeploymentSpec, parse_spec

Verdict = Literal["correct", "wrong", "lost"]
STATE_DIR = STATE_ROOT / "bench-faults"
STAGES = [
    {"name": "canary", "weight": 20, "bake": "PT3S"},
    {"name": "pilot", "weight": 50, "bake": "PT3S"},
]
FAULTY_ERROR_RATE = 0.3
RESULT_TIMEOUT = 120.0  # no result by then: the deployment is lost


@dataclass(frozen=True)
class RunResult:
    """One run: where the fault landed, how the deployment ended, what Envoy reads."""

    scenario: str
    number: int
    faulty: bool
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


async def run_scenario(rig: Rig, name: str, runs: int, seed: int) -> list[RunResult]:
    """`runs` deployments, each with the scenario's fault; the workers stop at the end."""
    rng = random.Random(f"{seed}-{name}")
    say(f"{name}: {SCENARIOS[name].summary}")
    results = []
    try:
        for number in range(1, runs + 1):
            results.append(await run_once(rig, name, number, rng))
            say(row(results[-1]))
    finally:
        rig.stop_workers()
    return results


async def run_once(rig: Rig, name: str, number: int, rng: random.Random) -> RunResult:
    """Deploy, inject the scenario's fault, wait for the result, heal, read Envoy."""
    scenario = SCENARIOS[name]
    run = Run(rig, number, f"faults-{name}", rng, faulty=number % 2 == 0)
    await prepare(rig, scenario, run)
    if scenario.before_start is not None:
        scenario.before_start(rig, run)
    spec = spec_for(rig, scenario, f"faults-{name}-{number}")
    ended: DeploymentResult | BaseException | None = None
    try:
        run.handle = await start_deployment(rig.client, spec, run.task_queue)
        await until(lambda: answers(run.deployment), f"a worker picks {spec.service} up")
        try:
            await scenario.inject(rig, run)
        except TimeoutError as err:  # the fault never found its moment: say so, carry on
            run.notes.append(f"fault not injected: {err}")
        ended = await result_within(run.deployment, RESULT_TIMEOUT)
    finally:
        await run.end_background()
        run.notes += await rig.heal()
    safe_after = time.monotonic() - run.fault_at if run.fault_at is not None else None
    if ended is None:
        with contextlib.suppress(RPCError):
            await run.deployment.terminate("lost: no result within the fault bench's timeout")
    if died := len(rig.workers) - len(rig.live_workers()):
        run.notes.append(f"{died} worker(s) exited by themselves")
    expected = "rolled_back" if run.faulty else scenario.healthy_ends
    verdict, outcome, reason = judge(ended, await rig.site.router_state(), rig.site, expected)
    return RunResult(
        scenario=name,
        number=number,
        faulty=run.faulty,
        phase_at_fault=run.phase_at_fault,
        verdict=verdict,
        outcome=outcome,
        reason=reason,
        safe_after=None if ended is None else safe_after,
        notes="; ".join(run.notes),
    )


def spec_for(rig: Rig, scenario: Scenario, service: str) -> DeploymentSpec:
    """The site's spec, the router and the metric source each through their own gate."""
    data = rig.site.spec(
        service=service,
        stages=STAGES,
        failed_checks_tolerated=1,
        # Judged on errors only: the faults slow a busy 2-core machine, and a latency
        # limit would then judge the machine rather than the canary.
        metrics=ERRORS_ONLY,
        **scenario.analysis,
    ).model_dump(mode="json")
    data["router"]["admin_url"] = rig.router_gate.url
    data["analysis"]["source"]["admin_url"] = rig.stats_gate.url
    return parse_spec(data)


async def prepare(rig: Rig, scenario: Scenario, run: Run) -> None:
    """Envoy back on v1 at 0%, the canary's fault set, the scenario's workers polling."""
    site = rig.site
    home = RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )
    await router_for(site.spec().router).restore(home)
    error_rate = FAULTY_ERROR_RATE if run.faulty else 0.0
    await asyncio.to_thread(set_fault, site.canary.port, error_rate, 0.0)
    while len(rig.live_workers()) < scenario.workers:
        rig.start_worker(run.task_queue)
    await until(
        lambda: all_polling(rig.client, run.task_queue, rig.workers),
        f"{scenario.workers} worker(s) poll {run.task_queue}",
        timeout=60,
    )


async def answers(handle: Handle) -> bool:
    """True once a worker answers the deployment's status query."""
    return await phase_of(handle) != "unknown"


async def result_within(handle: Handle, timeout: float) -> DeploymentResult | BaseException | None:
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
    ended: DeploymentResult | BaseException | None,
    state: RouterState,
    site: Site,
    expected: str,
) -> tuple[Verdict, str | None, str]:
    """Correct, wrong or lost; with the outcome and reason (or what was wrong)."""
    if ended is None:
        return "lost", None, f"no result within {RESULT_TIMEOUT:g} s"
    if isinstance(ended, BaseException):
        return "wrong", "failed", f"workflow failed: {ended}; Envoy reads {state}"
    home = site.canary.address if expected == "promoted" else site.stable.address
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
        f"{r.scenario:<16} run {r.number:>2} {canary} fault in {r.phase_at_fault:<12} "
        f"-> {r.verdict:<7} {r.outcome or '-':<11} safe after {safe}"
        f"  ({r.reason[:90]}{'; ' + r.notes if r.notes else ''})"
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
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        nargs="+",
        choices=[*SCENARIOS, "all"],
        default=["all"],
        metavar="NAME",
        help=f"one or more of {', '.join(SCENARIOS)}; or all (default). See docs/RELIABILITY.md",
    )
    parser.add_argument(
        "--runs", type=_at_least_one, default=10, help="runs per scenario (default 10)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults' timing")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    return parser.parse_args(argv)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


async def run(args: argparse.Namespace) -> int:
    scenarios = list(SCENARIOS) if "all" in args.scenario else args.scenario
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


def main(argv: list[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
