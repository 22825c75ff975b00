"""Long holds continue as new: a gate or a bake that lasts days goes on in fresh runs of
the same workflow, carrying the deployment's state, so each run's history stays short."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from bench.scripted import ScriptedActivities
from frontends.client.history import deployment_input
from sluicegate.contracts import BACKUP, PromoteInput, Resumption
from tests.test_workflow import deployment, unique_spec, wait_for
from workflows.canary import CanaryDeployment


async def _carried(env: WorkflowEnvironment, workflow_id: str) -> Resumption | None:
    """What the latest run of the deployment was given by the run before it."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    _, resumed = await deployment_input(env.client, payloads)
    return resumed


async def test_a_gate_waiting_days_continues_as_new_and_is_promoted_in_its_last_run(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=[{"name": "review", "weight": 10, "manual_gate": True}])
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        await time_skipping_env.sleep(timedelta(days=3, hours=1))
        status = await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        assert status.stage == "review" and status.canary_weight == 10
        carried = await _carried(time_skipping_env, handle.id)
        assert carried is not None and carried.runs >= 2 and carried.hold.at_gate
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="late"))
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome == "promoted"
    assert [c.by for c in result.controls] == ["late"]
    # Backed up, shifted to 10% and told once: later runs carry that over.
    assert acts.calls.count(BACKUP) == 1
    assert acts.weights[0] == 10 and acts.weights.count(10) == 1
    assert acts.events.count("awaiting_approval") == 1
    assert acts.events.count("deadline") == 1  # max_wait's page, once across the runs
    assert len(history.events) < 150  # the last run's alone


async def test_a_bake_of_days_spans_runs_and_lasts_its_whole_length(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=[{"name": "soak", "weight": 20, "bake": "P3D"}])
    before = await time_skipping_env.get_current_time()
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
        carried = await _carried(time_skipping_env, handle.id)
    elapsed = await time_skipping_env.get_current_time() - before
    assert result.outcome == "promoted"
    assert acts.weights[0] == 20 and acts.weights.count(20) == 1
    assert carried is not None and carried.runs >= 2
    assert elapsed >= timedelta(days=3)  # the bake, in full, across the runs


async def test_a_guard_of_days_spans_runs_then_stable_is_pointed_at_the_canary_once(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(
        task_queue,
        stages=[{"name": "soak", "weight": 20, "bake": "PT1H"}],
        post_promotion={"watch": "P2DT1H"},
    )
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
        carried = await _carried(time_skipping_env, handle.id)
    assert result.outcome == "promoted"
    assert carried is not None and carried.stage_index is None and carried.runs >= 2
    # 20%, 100% once, then stable pointed at the canary and served as stable, once each.
    assert acts.weights == [20, 100, 100, 0]
    assert acts.events.count("guarding") == 1
    assert acts.events.count("promoted") == 1
