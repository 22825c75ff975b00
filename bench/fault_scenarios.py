"""The fault scenarios: what breaks, when, and how a correct deployment must end.

Each scenario's `inject` runs once a worker has picked the deployment up. It aims the fault
(a seeded random delay, or a wait for a phase, a weight or a running activity), calls
`run.mark()` just before the fault lands, and returns. Faults that heal by themselves (a
gate reopened, a person resuming) are scheduled as background tasks; whatever is still
broken when the run ends is healed by `Rig.heal`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench import until
from bench.fault_rig import Rig, Run, status_of
from bench.gate import GateMode
from sluicegate.contracts import ControlInput, Outcome
from workflows.canary import CanaryDeployment

PERSON = "bench (the person on call)"
# Seconds from pick-up to a randomly timed fault, keyed by "faulty canary": about the
# length of a healthy deployment, or of a faulty one's way to its rollback.
FAULT_WINDOW = {False: 9.0, True: 2.0}
RESULT_WAIT = 120.0  # longer than any run waits for its result


@dataclass(frozen=True)
class Scenario:
    """A fault, the spec it runs under, and how a healthy canary must end despite it.

    A faulty canary (30% errors) must always end `rolled_back`.
    """

    summary: str
    inject: Callable[[Rig, Run], Awaitable[None]]
    healthy_ends: Outcome = "promoted"
    workers: int = 1
    analysis: dict[str, Any] = field(default_factory=dict)  # spec overrides
    before_start: Callable[[Rig, Run], None] | None = None


async def kill_the_worker(rig: Rig, run: Run) -> None:
    await run.random_wait(FAULT_WINDOW[run.faulty])
    await run.mark()
    rig.kill_worker(rig.live_workers()[0])
    rig.start_worker(run.task_queue)


async def kill_one_of_two_workers(rig: Rig, run: Run) -> None:
    await run.random_wait(FAULT_WINDOW[run.faulty])
    await run.mark()
    workers = rig.live_workers()
    victim = run.rng.randrange(len(workers))
    rig.kill_worker(workers[victim])
    run.notes.append(f"killed worker {victim + 1} of {len(workers)}")


async def restart_the_server(rig: Rig, run: Run) -> None:
    await run.random_wait(FAULT_WINDOW[run.faulty])
    await run.mark()
    rig.server.kill()
    started = time.monotonic()
    await rig.restart_server()
    run.notes.append(f"server down {time.monotonic() - started:.1f} s")


def activity_target(run: Run) -> str:
    """Which activity a kill-in-activity run aims at: backup and shift alternate for the
    healthy canary, the faulty one's rollback."""
    if run.faulty:
        return "rollback"
    return "backup" if run.number % 4 == 1 else "set_traffic"


def stall_before_backup(rig: Rig, run: Run) -> None:
    if activity_target(run) == "backup":
        rig.router_gate.set("stall")


async def kill_inside_an_activity(rig: Rig, run: Run) -> None:
    """Hang the router's admin API so the activity is in flight, then SIGKILL its worker."""
    target = activity_target(run)
    if target != "backup":
        await run.wait_for_weight(20)  # the next shift (or the rollback) will hang
        rig.router_gate.set("stall")
    await run.wait_for_activity(target)
    await run.mark()
    rig.kill_worker(rig.live_workers()[0])
    rig.start_worker(run.task_queue)
    run.notes.append(f"killed during {target}")
    run.later(run.rng.uniform(0.5, 3), "admin API back", lambda: rig.router_gate.set("pass"))


def an_outage_mode(run: Run) -> GateMode:
    return run.rng.choice(["refuse", "stall"])


async def cut_the_admin_api(rig: Rig, run: Run) -> None:
    """The router's way to Envoy's admin API is cut across the next shift (healthy canary)
    or across the rollback (faulty canary: it breaches within about 2 s)."""
    await run.wait_for_weight(20)
    mode = an_outage_mode(run)
    length = run.rng.uniform(6, 12) if run.faulty else run.rng.uniform(3, 10)
    await run.mark()
    rig.router_gate.set(mode)
    run.notes.append(f"admin API {mode} for {length:.1f} s")
    run.later(length, "admin API back", lambda: rig.router_gate.set("pass"))


async def restart_envoy(rig: Rig, run: Run) -> None:
    """SIGKILL Envoy and start it again on its files: the runtime weight falls back to 0%."""
    await run.random_wait(FAULT_WINDOW[run.faulty])
    await run.mark()
    envoy = rig.site.envoy
    assert envoy.process is not None
    envoy.process.kill()
    started = time.monotonic()
    await rig.heal()  # starts Envoy again on the same ports, bootstrap and EDS files
    run.notes.append(f"Envoy down {time.monotonic() - started:.1f} s")


async def cut_the_metrics(rig: Rig, run: Run) -> None:
    """Envoy's stats unreachable for the metric source for 1-8 s; past the spec's limit the
    deployment pauses for a person, who restores the metrics and resumes it."""
    await run.wait_for_weight(20)
    mode = an_outage_mode(run)
    length = run.rng.uniform(1, 8)
    await run.mark()
    rig.stats_gate.set(mode)
    run.notes.append(f"stats {mode} for up to {length:.1f} s")
    run.later(length, "stats back", lambda: rig.stats_gate.set("pass"))
    run.background.append(asyncio.create_task(a_person_resumes(rig, run)))


async def a_person_resumes(rig: Rig, run: Run) -> None:
    """Whenever Sluicegate pauses the deployment for a person: fix the metrics, resume."""
    answered = 0

    async def paused_for_a_person() -> bool:
        status = await status_of(run.deployment)
        if status is None or not status.paused:
            return False
        return sum(c.by == "sluicegate" for c in status.controls) > answered

    while True:  # until the run ends and cancels it
        await until(paused_for_a_person, "a pause for a person", timeout=RESULT_WAIT, poll=0.2)
        answered += 1
        rig.stats_gate.set("pass")
        await run.deployment.execute_update(
            CanaryDeployment.resume_update, ControlInput(by=PERSON, reason="metrics are back")
        )
        run.notes.append(f"paused for a person ({answered}), who resumed it")


async def stop_the_traffic(rig: Rig, run: Run) -> None:
    """No requests at all from the first stage on: no data, so it must never promote."""
    await run.wait_for_weight(20)
    await run.mark()
    rig.site.load.kill()


async def kill_the_canary(rig: Rig, run: Run) -> None:
    """The canary's process dies outright (SIGKILL); Envoy answers 503 for its share."""
    await run.random_wait(5.0)
    await run.mark()
    rig.site.canary.process.kill()


SCENARIOS: dict[str, Scenario] = {
    "worker-kill": Scenario(
        "the only worker SIGKILLed at a random moment, a new one started", kill_the_worker
    ),
    "two-workers": Scenario(
        "two workers share the task queue; one SIGKILLed at a random moment",
        kill_one_of_two_workers,
        workers=2,
    ),
    "server-restart": Scenario(
        "the dev server SIGKILLed at a random moment, restarted on its SQLite file",
        restart_the_server,
    ),
    "kill-in-activity": Scenario(
        "the worker SIGKILLed inside backup, a traffic shift or the rollback "
        "(the admin API held so the activity is in flight)",
        kill_inside_an_activity,
        before_start=stall_before_backup,
    ),
    "admin-outage": Scenario(
        "Envoy's admin API unreachable (refused or hanging) across a shift or the rollback",
        cut_the_admin_api,
    ),
    "envoy-restart": Scenario(
        "Envoy SIGKILLed at a random moment and restarted (weights fall back to 0%)",
        restart_envoy,
    ),
    "metrics-outage": Scenario(
        "the metric source unreachable for 1-8 s; `on_inconclusive: pause`",
        cut_the_metrics,
        analysis={"inconclusive_checks_tolerated": 3, "on_inconclusive": "pause"},
    ),
    "no-traffic": Scenario(
        "no requests from the first stage on (no data); `on_inconclusive: rollback`",
        stop_the_traffic,
        healthy_ends="rolled_back",
        analysis={"inconclusive_checks_tolerated": 3},
    ),
    "canary-dies": Scenario(
        "the canary's process SIGKILLed at a random moment",
        kill_the_canary,
        healthy_ends="rolled_back",
    ),
}
