"""A watcher lost with its worker just as its stage ends, on a real dev server (the
time-skipping server does not time out a silent activity's heartbeat)."""

from __future__ import annotations

from temporalio.client import Client

from bench.scripted import ScriptedActivities, make_spec
from frontends.client.deployments import start_deployment
from tests.test_workflow import check, wait_for
from workers.main import build_worker
from workflows.canary import CanaryDeployment

pytest_plugins = ["tests.stack_fixtures"]
TASK_QUEUE = "watcher-loss"


async def test_a_watcher_lost_while_being_stopped_does_not_roll_back(client: Client) -> None:
    # The watcher goes silent as a dead worker's would: the cancel at the end of the bake
    # is never confirmed, and the attempt times out on its heartbeat after 10 s.
    acts = ScriptedActivities(silent_in_stage="only")
    spec = make_spec(
        "watcher-loss",
        stages=[{"name": "only", "weight": 10, "bake": "PT1S"}],
        post_promotion={"watch": "PT1S"},  # real time: a short guard after 100%
        analysis={**make_spec().analysis.model_dump(mode="json"), "interval": "PT1S"},
    )
    async with build_worker(client, TASK_QUEUE, activities=acts.activities()):
        handle = await start_deployment(client, spec, TASK_QUEUE)
        await wait_for(handle, lambda s: s.phase == "progressing")
        await handle.signal(CanaryDeployment.health_report, check("only", "healthy", 1))
        result = await handle.result()
    assert (result.outcome, result.reason) == (
        "promoted",
        "all stages passed; canary promoted to 100%",
    )
    assert acts.weights == [10, 100, 100, 0]
