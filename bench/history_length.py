"""History length: how many events one deployment with the default plan writes.

    python -m bench.history_length [--scales 600 300]

(a) The time-skipping test server runs the real default plan (5% / 25% / 50% for 30 / 60 /
    120 min, checks every 10 s, then 100% and the guard, `post_promotion.watch` 30 min) with
    the scripted activities of bench/scripted.py: promoted, rolled back in its last stage,
    rolled back in the guard; then the same with every hook kind in use (a pre_rollout
    command, a pre_stage http hook, smoke, post_promotion command and http, on_rollback
    http), run by the REAL `HookRunner(settings).run_hook` against local HTTP servers and
    a tiny command (bench/hook_targets.py); then with a fleet of three router instances.
(b) The dev server, real activities, Envoy and load run the same stage weights with the
    bakes and the guard divided by each scale and a check every second, to show that the
    count does not grow with bake time or checks: those live inside the long-running
    watch activity, whose heartbeats write no events.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.hooks import HookRunner
from bench import STATE_ROOT, event_name, event_seconds, load_summary, say
from bench.fleet_rig import with_guard
from bench.hook_targets import HookTargets
from bench.scripted import STABLE, ScriptedActivities, make_spec
from deploy.processes import venv_binary
from deploy.stack import LocalStack, Site
from frontends.client.deployments import follow, start_deployment
from sluicegate.contracts import CheckReport, DeploymentStatus, PromoteInput
from sluicegate.settings import Settings
from sluicegate.spec import DEFAULT_STAGES, DeploymentSpec, PostPromotionSpec
from workers.client import DATA_CONVERTER, connect
from workers.main import build_worker
from workers.search_attributes import ensure_search_attributes
from workflows.canary import GUARD_STAGE

STATE_DIR = STATE_ROOT / "bench-history"
TARGET = 500
GATE_WAIT = timedelta(days=7, hours=1)
PROMOTE = "promote"  # CanaryDeployment's update (workflows/controls.py)


@dataclass
class Measured:
    """One deployment: how it ran and its history's events by type."""

    method: str
    plan: str
    outcome: str
    checks: str
    took: timedelta
    events: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.events.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.history_length", description=__doc__)
    parser.add_argument(
        "--scales",
        type=int,
        nargs="+",
        default=[600, 300],
        help="divide the default bakes by each of these on the real stack (default 600 300)",
    )
    return parser.parse_args(argv)


FLEET = 3  # router instances (and instances of each version) of the fleet cases
ENDINGS = {
    "promoted": None,
    "breach at 50%": DEFAULT_STAGES[-1].name,
    "breach in the guard": GUARD_STAGE,
}


def _fleet_fields(canary: list[str]) -> dict[str, object]:
    """Three Envoy instances (never reached: the activities are scripted) and three
    instances of each version."""
    host, port = STABLE.rsplit(":", 1)
    return {
        "stable": {"version": "v1", "addresses": [f"{host}:{int(port) + 2 * n}" for n in range(3)]},
        "canary": {"version": "v2", "addresses": canary},
        "router": {
            "type": "envoy",
            "instances": [
                {
                    "name": f"edge-{name}",
                    "admin_url": f"http://127.0.0.1:{19901 + n}",
                    "endpoints_dir": "/nonexistent",
                }
                for n, name in enumerate("abc")
            ],
        },
    }


async def on_time_skipping() -> list[Measured]:
    """The default plan on the time-skipping server, scripted routing and health, real
    hooks."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=venv_binary("temporal-test-server"),
    )
    one, fleet = HookTargets(1), HookTargets(FLEET)
    measured = []
    try:
        await ensure_search_attributes(env.client)
        plain: dict[str, object] = {}
        hooked = {
            **one.spec_fields(),
            "canary": {"version": "v2", "address": one.addresses[0]},
        }
        fleet_hooked = {**fleet.spec_fields(), **_fleet_fields(fleet.addresses)}
        cases = [
            ("default plan", plain, ending) for ending in ENDINGS
        ] + [
            ("every hook", hooked, ending) for ending in ENDINGS
        ] + [
            (f"fleet of {FLEET}, every hook", fleet_hooked, ending)
            for ending in ("promoted", "breach in the guard")
        ]  # fmt: skip
        runner = HookRunner(one.settings())
        for label, fields, ending in cases:
            acts = ScriptedActivities(breach_in_stage=ENDINGS[ending])
            task_queue = f"bench-{uuid.uuid4().hex[:8]}"
            spec = make_spec(service=f"bench-history-{task_queue}", **fields)
            activities = [*acts.activities(), runner.run_hook]
            async with build_worker(env.client, task_queue, activities=activities):
                handle = await start_deployment(env.client, spec, task_queue)
                result = await handle.result()
            failed = [hook.describe() for hook in result.hooks if not hook.ok]
            if failed:
                raise RuntimeError(f"{label}, {ending}: a hook failed: {failed}")
            history = await handle.fetch_history()
            measured.append(
                Measured(
                    method="time-skipping, scripted",
                    plan=f"{label}, {ending}",
                    outcome=result.outcome,
                    checks=f"hooks {len(result.hooks)}" if result.hooks else "n/a (scripted)",
                    took=_took(history.events),
                    events=Counter(event_name(e) for e in history.events),
                )
            )
        measured += await _gate_for_days(env)
    finally:
        one.close()
        fleet.close()
        await env.shutdown()
    return measured


async def _gate_for_days(env: WorkflowEnvironment) -> list[Measured]:
    """A gate nobody decides at for a week, then promoted: each run of the deployment (it
    continues as new every `continue_as_new_after`, 1 day by default) measured apart."""
    acts = ScriptedActivities()
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"
    gate = [{"name": "review", "weight": 10, "manual_gate": True}]
    spec = make_spec(service=f"bench-history-{task_queue}", stages=gate)
    async with build_worker(env.client, task_queue, activities=acts.activities()):
        handle = await start_deployment(env.client, spec, task_queue)
        await env.sleep(GATE_WAIT)
        await handle.execute_update(PROMOTE, PromoteInput(by="bench"))  # pyright: ignore[reportUnknownMemberType]
        result = await handle.result()
    runs: list[Sequence[HistoryEvent]] = []
    run_id: str | None = None  # the latest run first, then each one it continued from
    while True:
        history = await env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        runs.insert(0, history.events)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            break
    return [
        Measured(
            method="time-skipping, scripted",
            plan=f"gate {GATE_WAIT.days} days, run {number} of {len(runs)}",
            outcome=result.outcome if number == len(runs) else "continued",
            checks="n/a (scripted)",
            took=_took(events),
            events=Counter(event_name(e) for e in events),
        )
        for number, events in enumerate(runs, 1)
    ]


async def on_real_stack(scales: list[int]) -> list[Measured]:
    """The default stage weights with scaled-down bakes on the dev server and real Envoy."""
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    stack = LocalStack(STATE_DIR)
    measured = []
    try:
        address, _ = stack.temporal()
        client = await connect(Settings(temporal_address=address))
        site = Site(stack, "bench-history")
        task_queue = "bench-history"
        async with build_worker(client, task_queue):
            for number, scale in enumerate(scales):
                stages = [
                    {"name": s.name, "weight": s.weight, "bake": s.bake / scale}
                    for s in DEFAULT_STAGES
                ]
                # After a promotion the canary build is the stable one: swap roles each run.
                stable, canary = (
                    (site.stable, site.canary) if number % 2 == 0 else (site.canary, site.stable)
                )
                spec = site.spec(
                    service=f"bench-history-{scale}",
                    stable=stable,
                    canary=canary,
                    stages=stages,
                    interval=timedelta(seconds=1),
                )
                spec = with_guard(spec, PostPromotionSpec().watch / scale)
                measured.append(await _deploy(client, spec, task_queue, scale))
        site.stop()
        say(f"real stack: load {load_summary(site.load.tail(5))}")
    finally:
        stack.close()
    return measured


async def _deploy(client: Client, spec: DeploymentSpec, task_queue: str, scale: int) -> Measured:
    """Run one deployment to its end, counting the checks each stage's watcher made."""
    handle = await start_deployment(client, spec, task_queue)
    checks = {s.name: 0 for s in spec.stages}
    stage: str | None = None
    async for event in follow(client, handle.id, poll=timedelta(milliseconds=200)):
        if isinstance(event, DeploymentStatus):
            stage = event.stage
        elif isinstance(event, CheckReport) and stage is not None:
            checks[stage] = max(checks.get(stage, 0), event.number)
    result = await handle.result()
    history = await handle.fetch_history()
    return Measured(
        method="dev server, real activities",
        plan=f"default weights, bakes+guard / {scale}",
        outcome=result.outcome,
        checks=f">= {sum(checks.values())} ({'/'.join(str(n) for n in checks.values())})",
        took=_took(history.events),
        events=Counter(event_name(e) for e in history.events),
    )


def report(measured: list[Measured]) -> bool:
    """Print totals and the per-type breakdown; True if every run is within the target."""
    say(
        f"\n{'#':>2}  {'method':<27} {'plan':<44} {'took':>9}  {'outcome':<11} "
        f"{'checks':<16} events"
    )
    for number, m in enumerate(measured, 1):
        say(
            f"{number:>2}  {m.method:<27} {m.plan:<44} {_duration(m.took):>9}  {m.outcome:<11} "
            f"{m.checks:<16} {m.total}"
        )
    say("\nEvents by type (columns are the runs above):")
    types = sorted(set().union(*(m.events for m in measured)))
    width = max(len(t) for t in types)
    say(f"{'':<{width}}  " + " ".join(f"{n:>4}" for n in range(1, len(measured) + 1)))
    for name in types:
        say(f"{name:<{width}}  " + " ".join(f"{m.events[name]:>4}" for m in measured))
    say(f"{'total':<{width}}  " + " ".join(f"{m.total:>4}" for m in measured))
    worst = max(m.total for m in measured)
    ok = worst <= TARGET
    say(f"\nTarget: <= {TARGET} events per deployment; most seen {worst}: {_verdict(ok)}")
    return ok


def _took(events: Sequence[HistoryEvent]) -> timedelta:
    """Workflow time from its first event to its last (server clock, skipped or not)."""
    return timedelta(seconds=event_seconds(events[-1]) - event_seconds(events[0]))


def _duration(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.1f} s"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def run(args: argparse.Namespace) -> int:
    measured = await on_time_skipping()
    measured += await on_real_stack(args.scales)
    return 0 if report(measured) else 1


def main(argv: list[str] | None = None) -> None:
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
