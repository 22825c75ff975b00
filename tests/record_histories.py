"""Record the workflow histories that test_replay.py replays.

    .venv/bin/python -m tests.record_histories

It records only the histories that are missing: a history already kept is never
overwritten, because replaying old histories is what catches an unguarded change. After a
deliberate, `workflow.patched`-guarded change, add a recording under a new name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.processes import venv_binary
from sluicegate.deployments import start_deployment
from sluicegate.operations import start_restore
from tests.scripted import ScriptedActivities, make_spec
from workers.client import DATA_CONVERTER
from workers.main import build_worker
from workflows.canary import CanaryDeployment
from workflows.state import ControlInput, PromoteInput

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


async def restored_backup(client: Client, path: Path) -> None:
    """RestoreRelease whose first round of restore attempts fails."""
    from tests.test_restore_workflow import PROMOTED, restore_input

    acts = ScriptedActivities(state=PROMOTED, rollback_failures=5)
    async with build_worker(client, "record-restore", activities=acts.activities()):
        handle = await start_restore(client, "record-restore", restore_input("recorded-restore"))
        await handle.result()
        path.write_text((await handle.fetch_history()).to_json())


async def _wait_phase(handle: object, phase: str) -> None:
    for _ in range(400):
        if (await handle.query(CanaryDeployment.status)).phase == phase:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.025)
    raise RuntimeError(f"never reached {phase}")


async def main() -> None:
    from workers.search_attributes import ensure_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=venv_binary("temporal-test-server")
    )
    try:
        await ensure_search_attributes(env.client)
        HISTORIES.mkdir(exist_ok=True)
        recorders = {
            "promoted_with_controls.json": promoted_with_controls,
            "rolled_back_on_breach.json": rolled_back_on_breach,
            "restored_backup.json": restored_backup,
            # With notifications (patch "notifications"): the courier's notify activities.
            "notified_promotion_with_controls.json": promoted_with_controls,
            "notified_breach.json": rolled_back_on_breach,
            "aborted_by_operator.json": aborted_by_operator,
            # Bake timers left to lapse (patch "bake-timers-lapse").
            "lapsing_bake_timers.json": promoted_with_controls,
            "lapsing_bake_timers_abort.json": aborted_by_operator,
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
