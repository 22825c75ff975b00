"""Record the workflow histories that test_replay.py replays.

    .venv/bin/python -m tests.record_histories

It records only the histories that are missing: a history already kept is never
overwritten, because replaying old histories is what catches an unguarded change. After a
deliberate, `workflow.patched`-guarded change, add a recording under a new name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from bench.scripted import ScriptedActivities, make_spec
from deploy.processes import venv_binary
from frontends.client.deployments import start_deployment, supersede_deployment
from frontends.client.operations import start_restore
from sluicegate.contracts import ControlInput, DeploymentStatus, PromoteInput, SupersedeInput
from workers.client import DATA_CONVERTER
from workers.main import build_worker
from workflows.canary import CanaryDeployment

HISTORIES = Path(__file__).parent / "histories"


async def promoted_with_controls(client: Client, path: Path) -> None:
    """Default plan: pause, resume, promote one stage early, then the rest to 100%."""
    acts = ScriptedActivities()
    async with build_worker(client, "record-promoted", activities=acts.activities()):
        handle = await start_deployment(client, make_spec("recorded-promoted"), "record-promoted")
        await _wait_phase(handle, "progressing")
        await handle.execute_update(CanaryDeployment.pause_update, ControlInput(by="rec"))
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput(by="rec"))
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="rec"))
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def aborted_by_operator(client: Client, path: Path) -> None:
    """Aborted by an update while its first stage bakes, then rolled back."""
    acts = ScriptedActivities(hold_in_stage="canary")
    async with build_worker(client, "record-abort", activities=acts.activities()):
        handle = await start_deployment(client, make_spec("recorded-abort"), "record-abort")
        await _wait_phase(handle, "progressing")
        await handle.execute_update(
            CanaryDeployment.abort_update, ControlInput(by="rec", reason="recorded abort")
        )
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def rolled_back_on_breach(client: Client, path: Path) -> None:
    acts = ScriptedActivities(breach_in_stage="pilot")
    async with build_worker(client, "record-breach", activities=acts.activities()):
        handle = await start_deployment(client, make_spec("recorded-breach"), "record-breach")
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def rolled_back_after_failing_rollbacks(client: Client, path: Path) -> None:
    """A breach whose first round of restore attempts fails; the next round restores."""
    acts = ScriptedActivities(breach_in_stage="pilot", rollback_failures=5)
    async with build_worker(client, "record-failing", activities=acts.activities()):
        handle = await start_deployment(client, make_spec("recorded-failing"), "record-failing")
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def paused_for_no_data(client: Client, path: Path) -> None:
    """`on_inconclusive: pause`: the watcher finds no data past the limit, the deployment
    pauses for a person, who resumes it; a new healthy check lets it promote."""
    from tests.test_workflow import check

    acts = ScriptedActivities(hold_in_stage="only")
    spec = make_spec(
        "recorded-no-data",
        stages=[{"name": "only", "weight": 10, "bake": "PT1S"}],
        analysis={**make_spec().analysis.model_dump(mode="json"), "on_inconclusive": "pause"},
    )
    async with build_worker(client, "record-no-data", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-no-data")
        await _wait_phase(handle, "progressing")
        await handle.execute_update(
            CanaryDeployment.health_lapsed, check("only", "inconclusive", 7)
        )
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput(by="rec"))
        await handle.signal(CanaryDeployment.health_report, check("only", "healthy", 8))
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def cancelled_during_a_shift(client: Client, path: Path) -> None:
    """Cancelled while a shift hangs: the rollback waits until the shift has stopped."""
    acts = ScriptedActivities(hang_set_traffic_at_weight=25)
    stages = [
        {"name": "canary", "weight": 5, "bake": "PT1S"},
        {"name": "pilot", "weight": 25, "bake": "PT1S"},
    ]
    spec = make_spec("recorded-cancel", stages=stages)
    async with build_worker(client, "record-cancel", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-cancel")
        for _ in range(400):
            if (await handle.query(CanaryDeployment.status)).stage == "pilot":
                break
            await asyncio.sleep(0.025)
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        assert acts.steps == ["shift cancelled", "rollback"]
        path.write_text((await handle.fetch_history()).to_json())


async def aborted_while_measuring_stable(client: Client, path: Path) -> None:
    """Aborted while stable's baseline is measured: the measuring stops, then the rollback."""
    acts = ScriptedActivities(hold_baseline=True)
    async with build_worker(client, "record-baseline-abort", activities=acts.activities()):
        handle = await start_deployment(
            client, make_spec("recorded-baseline-abort"), "record-baseline-abort"
        )
        await _wait_phase(handle, "measuring_baseline")
        await handle.execute_update(
            CanaryDeployment.abort_update, ControlInput(by="rec", reason="recorded abort")
        )
        assert (await handle.result()).outcome in ("rolled_back", "not_started")
        assert acts.steps == ["baseline cancelled", "rollback"]
        path.write_text((await handle.fetch_history()).to_json())


async def cancelled_while_measuring_stable(client: Client, path: Path) -> None:
    """Cancelled while stable's baseline is measured: the measuring stops, then the rollback."""
    acts = ScriptedActivities(hold_baseline=True)
    async with build_worker(client, "record-baseline-cancel", activities=acts.activities()):
        handle = await start_deployment(
            client, make_spec("recorded-baseline-cancel"), "record-baseline-cancel"
        )
        await _wait_phase(handle, "measuring_baseline")
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        assert acts.steps == ["baseline cancelled", "rollback"]
        path.write_text((await handle.fetch_history()).to_json())


async def promoted_without_a_baseline(client: Client, path: Path) -> None:
    """Stable's baseline could not be measured: the limits are held as written."""
    acts = ScriptedActivities(fail_baseline=True)
    spec = make_spec(
        "recorded-no-baseline", stages=[{"name": "only", "weight": 10, "bake": "PT10M"}]
    )
    async with build_worker(client, "record-no-baseline", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-no-baseline")
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def bake_made_up(
    sleep: Callable[[timedelta], Awaitable[None]], client: Client, path: Path
) -> None:
    """A watcher resumed after its worker died reports 2 minutes unwatched: the bake is
    made longer by as much, and is paused and resumed while it is made up."""
    acts = ScriptedActivities(unwatched_in_stage=("only", timedelta(minutes=2)))
    spec = make_spec("recorded-made-up", stages=[{"name": "only", "weight": 10, "bake": "PT30M"}])
    async with build_worker(client, "record-made-up", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-made-up")
        await _wait_status(handle, lambda s: s.bake is not None and bool(s.bake.unwatched))
        await sleep(timedelta(minutes=30))  # the time-skipping server's: the bake runs out
        await _wait_status(handle, lambda s: s.bake is not None and bool(s.bake.made_up))
        await handle.execute_update(CanaryDeployment.pause_update, ControlInput(by="rec"))
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput(by="rec"))
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def backup_refused(client: Client, path: Path) -> None:
    """The router refuses the backup: no traffic moves."""
    acts = ScriptedActivities(fail_backup=True)
    async with build_worker(client, "record-no-backup", activities=acts.activities()):
        handle = await start_deployment(client, make_spec("recorded-no-backup"), "record-no-backup")
        assert (await handle.result()).outcome == "not_started"
        path.write_text((await handle.fetch_history()).to_json())


async def refused_spec(client: Client, path: Path) -> None:
    """A spec with a misspelt field, as `temporal workflow start` sends it: refused."""
    raw = make_spec("recorded-refused").model_dump(mode="json")
    raw["analysis"]["intervall"] = raw["analysis"].pop("interval")
    async with build_worker(client, "record-refused", activities=ScriptedActivities().activities()):
        handle = await client.start_workflow(
            "CanaryDeployment", raw, id="deploy-recorded-refused", task_queue="record-refused"
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        path.write_text((await handle.fetch_history()).to_json())


async def restored_backup(client: Client, path: Path) -> None:
    """RestoreRelease whose first round of restore attempts fails."""
    from tests.test_restore_workflow import PROMOTED, restore_input

    acts = ScriptedActivities(state=PROMOTED, rollback_failures=5)
    async with build_worker(client, "record-restore", activities=acts.activities()):
        handle = await start_restore(client, "record-restore", restore_input("recorded-restore"))
        await handle.result()
        path.write_text((await handle.fetch_history()).to_json())


async def promoted_at_a_gate(client: Client, path: Path) -> None:
    """A stage with a manual gate, promoted by a person (recorded before max_wait)."""
    acts = ScriptedActivities()
    spec = make_spec(
        "recorded-gate",
        stages=[{"name": "review", "weight": 10, "manual_gate": True}],
    )
    async with build_worker(client, "record-gate", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-gate")
        await _wait_phase(handle, "awaiting_approval")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="rec"))
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def guard_breach(client: Client, path: Path) -> None:
    """0.2: a breach while guarded at 100% puts the old version back."""
    acts = ScriptedActivities(breach_in_stage="post-promotion")
    spec = make_spec("recorded-guard", stages=[{"name": "only", "weight": 20, "bake": "PT1M"}])
    async with build_worker(client, "record-guard", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-guard")
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def whole_release(client: Client, path: Path) -> None:
    """0.2: every hook kind in its place, smoke before any user and at 100%, the guard."""
    from activities.hooks import HookRunner
    from sluicegate.settings import CommandSetting, Settings
    from tests.local_http import LocalServer, QuietHandler

    class Ok(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_GET

    service = LocalServer(Ok, poll_interval=0.05)
    ok = CommandSetting(argv=(sys.executable, "-c", "import sys; sys.stdin.read()"))
    runner = HookRunner(Settings(commands={"ok": ok}))
    command = {"type": "command", "name": "start-fleet", "command": "ok"}
    http = {"type": "http", "name": "load-test", "url": f"http://{service.address}/hook"}
    spec = make_spec(
        "recorded-release",
        canary={"version": "v2", "address": service.address},
        stages=[{"name": "only", "weight": 20, "bake": "PT1M"}],
        hooks={
            "pre_rollout": [command],
            "pre_stage": [http],
            "post_promotion": [{**command, "name": "retire-fleet"}],
        },
        smoke=[{"type": "smoke", "name": "health", "requests": 2}],
    )
    acts = ScriptedActivities()
    try:
        activities = [*acts.activities(), runner.run_hook]
        async with build_worker(client, "record-release", activities=activities):
            handle = await start_deployment(client, spec, "record-release")
            assert (await handle.result()).outcome == "promoted"
            path.write_text((await handle.fetch_history()).to_json())
    finally:
        service.close()


async def fleet_rolled_back(client: Client, path: Path) -> None:
    """0.2: a fleet of two routers; a shift one of them refuses rolls both back."""
    spec = make_spec(
        "recorded-fleet",
        router={
            "type": "envoy",
            "instances": [
                {"name": "edge-a", "admin_url": "http://127.0.0.1:19901", "endpoints_dir": "/a"},
                {"name": "edge-b", "admin_url": "http://127.0.0.1:19902", "endpoints_dir": "/b"},
            ],
        },
    )
    acts = ScriptedActivities(fail_set_traffic_at_weight=25)
    async with build_worker(client, "record-fleet", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-fleet")
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def progress_deadline_passed(client: Client, path: Path) -> None:
    """0.2: past its progress deadline, the deployment rolls back."""
    spec = make_spec(
        "recorded-deadline",
        stages=[{"name": "soak", "weight": 20, "bake": "PT10H"}],
        progress_deadline={"after": "PT1H", "then": "rollback"},
    )
    async with build_worker(
        client, "record-deadline", activities=ScriptedActivities().activities()
    ):
        handle = await start_deployment(client, spec, "record-deadline")
        assert (await handle.result()).outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def gate_paged(
    sleep: Callable[[timedelta], Awaitable[None]], client: Client, path: Path
) -> None:
    """0.2: a gate past max_wait pages, keeps waiting, then is promoted."""
    acts = ScriptedActivities()
    spec = make_spec(
        "recorded-gate-paged", stages=[{"name": "review", "weight": 10, "manual_gate": True}]
    )
    async with build_worker(client, "record-gate-paged", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-gate-paged")
        await _wait_phase(handle, "awaiting_approval")
        await sleep(timedelta(hours=4, minutes=1))
        for _ in range(400):
            if "deadline" in acts.events:
                break
            await asyncio.sleep(0.025)
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="rec"))
        assert (await handle.result()).outcome == "promoted"
        path.write_text((await handle.fetch_history()).to_json())


async def continued_at_a_gate(
    sleep: Callable[[timedelta], Awaitable[None]], client: Client, path: Path
) -> None:
    """0.2: a gate waiting past continue_as_new_after continues as new; the first run's
    history (ending ContinuedAsNew) and, beside it, the last run's (resumed, promoted)."""
    acts = ScriptedActivities()
    spec = make_spec(
        "recorded-continued", stages=[{"name": "review", "weight": 10, "manual_gate": True}]
    )
    async with build_worker(client, "record-continued", activities=acts.activities()):
        handle = await start_deployment(client, spec, "record-continued")
        await _wait_phase(handle, "awaiting_approval")
        await sleep(timedelta(days=1, hours=2))
        await _wait_phase(handle, "awaiting_approval")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="rec"))
        assert (await handle.result()).outcome == "promoted"
        first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        path.write_text((await first.fetch_history()).to_json())
        last = path.with_name("resumed_at_a_gate.json")
        last.write_text((await handle.fetch_history()).to_json())


async def superseded_during_a_stage(client: Client, path: Path) -> None:
    """SupersedeDeployment replaces a deployment held in its second stage: the abort signal,
    the wait for its rollback, the new deployment started as a child."""
    from activities.supersede import SUPERSEDE_ACTIVITIES
    from tests.test_supersede import HELD_IN_STAGE_2, v3

    acts = ScriptedActivities(hold_in_stage="held")
    activities = [*acts.activities(), *SUPERSEDE_ACTIVITIES]
    async with build_worker(client, "record-supersede", activities=activities):
        spec = make_spec("recorded-supersede", stages=HELD_IN_STAGE_2)
        old = await start_deployment(client, spec, "record-supersede")
        await _wait_status(old, lambda s: s.stage == "held")
        for _ in range(400):
            if "held" in acts.watched:
                break
            await asyncio.sleep(0.025)
        request = SupersedeInput(by="rec", reason="recorded supersede")
        handle = await supersede_deployment(client, v3(spec.service), "record-supersede", request)
        result = await handle.result()
        assert result.superseded is not None and result.superseded.outcome == "rolled_back"
        path.write_text((await handle.fetch_history()).to_json())


async def _wait_phase(handle: object, phase: str) -> None:
    for _ in range(400):
        if (await handle.query(CanaryDeployment.status)).phase == phase:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.025)
    raise RuntimeError(f"never reached {phase}")


async def _wait_status(handle: object, holds: Callable[[DeploymentStatus], bool]) -> None:
    for _ in range(400):
        if holds(await handle.query(CanaryDeployment.status)):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.025)
    raise RuntimeError("the status never got there")


async def main() -> None:
    from workers.search_attributes import ensure_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=venv_binary("temporal-test-server")
    )
    try:
        await ensure_search_attributes(env.client)
        HISTORIES.mkdir(exist_ok=True)
        # Release 0.1.0: one recording of each path through the workflows. A change to
        # workflow logic after it is patched and adds a recording under a new name.
        recorders = {
            "promoted_with_controls.json": promoted_with_controls,
            "aborted_by_operator.json": aborted_by_operator,
            "rolled_back_on_breach.json": rolled_back_on_breach,
            "rolled_back_after_failing_rollbacks.json": rolled_back_after_failing_rollbacks,
            "paused_for_no_data.json": paused_for_no_data,
            "cancelled_during_a_shift.json": cancelled_during_a_shift,
            "not_started_aborted_while_measuring.json": aborted_while_measuring_stable,
            "cancelled_while_measuring_stable.json": cancelled_while_measuring_stable,
            "promoted_without_a_baseline.json": promoted_without_a_baseline,
            "bake_made_up.json": functools.partial(bake_made_up, env.sleep),
            "not_started_backup_refused.json": backup_refused,
            "refused_spec.json": refused_spec,
            "restored_backup.json": restored_backup,
            # Recorded on 1c1c9a8 (0.2 work, before gate-max-wait).
            "promoted_at_a_gate.json": promoted_at_a_gate,
            # 0.2: the new paths.
            "guard_breach.json": guard_breach,
            "whole_release.json": whole_release,
            "fleet_rolled_back.json": fleet_rolled_back,
            "progress_deadline_passed.json": progress_deadline_passed,
            "gate_paged.json": functools.partial(gate_paged, env.sleep),
            # After 0.1.0: SupersedeDeployment (a new workflow, no patch needed).
            "superseded_during_a_stage.json": superseded_during_a_stage,
            # After 0.1.0: continue-as-new at long holds (patch continue-as-new).
            "continued_at_a_gate.json": functools.partial(continued_at_a_gate, env.sleep),
            # After 0.1.0: watchers stopped without waiting (patch watcher-not-awaited), at
            # each stage's end, a pause, a promote, and before a rollback.
            "promoted_not_awaiting_watchers.json": promoted_with_controls,
            "aborted_not_awaiting_the_watcher.json": aborted_by_operator,
            # After 0.1.0: promote and abort notified (patch control-notices).
            "promoted_with_control_notices.json": promoted_with_controls,
            "aborted_with_a_control_notice.json": aborted_by_operator,
        }
        for name, record in recorders.items():
            path = HISTORIES / name
            if path.exists():
                print(f"kept {path}")
            else:
                await record(env.client, path)
                print(f"recorded {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
