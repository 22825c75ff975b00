"""Deadlines: the whole deployment's `progress_deadline` and a manual gate's `max_wait`;
past either, the deployment rolls back or pages (P2) and keeps going, as the spec says."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from bench.scripted import STABLE, ScriptedActivities
from sluicegate.contracts import PromoteInput
from tests.test_workflow import deployment, unique_spec, wait_for
from tests.waiting import eventually
from workflows.canary import CanaryDeployment

LONG_STAGE = [{"name": "soak", "weight": 20, "bake": "PT10H"}]
GATE = [{"name": "review", "weight": 10, "manual_gate": True}]


async def test_past_the_progress_deadline_it_rolls_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(
        task_queue, stages=LONG_STAGE, progress_deadline={"after": "PT1H", "then": "rollback"}
    )
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by sluicegate: progress deadline 1h passed"
    assert acts.state.stable_endpoints == (STABLE,) and acts.weights == [20]
    assert [(c.action, c.by) for c in result.controls] == [("abort", "sluicegate")]


async def test_past_the_progress_deadline_it_pages_and_keeps_going(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(
        task_queue,
        stages=[{"name": "soak", "weight": 20, "bake": "PT2H"}],
        progress_deadline={"after": "PT1H", "then": "page"},
    )
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "promoted"
    (page,) = [n for n in acts.notifications if n.event == "deadline"]
    assert page.severity == "P2" and "progress deadline 1h passed at 20%" in page.summary


async def test_a_gate_past_max_wait_pages_once_and_keeps_waiting(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=GATE)  # the default max_wait: page after 4 h
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        await time_skipping_env.sleep(timedelta(hours=4, minutes=1))
        await eventually(lambda: "deadline" in acts.events, "the gate's page")
        status = await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        assert status.stage == "review"
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="late"))
        result = await handle.result()
    assert result.outcome == "promoted"
    (page,) = [n for n in acts.notifications if n.event == "deadline"]
    assert page.severity == "P2" and "has waited 4h for approval" in page.summary
    assert page.offers_decision


async def test_a_gate_past_max_wait_rolls_back_when_the_spec_says_so(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=GATE, max_wait={"after": "PT30M", "then": "rollback"})
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason == "no decision at stage review's gate within max_wait 30m"
    assert acts.state.stable_endpoints == (STABLE,)
