"""The guard after 100%: the canary is judged at full load while the old version stays
registered; a breach or an abort puts the old version back, a promote ends the guard early,
and only when it passes is stable pointed at the new version."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.scripted import STABLE, ScriptedActivities
from sluicegate.contracts import ControlInput, PromoteInput
from tests.test_workflow import deployment, unique_spec, wait_for
from workflows.canary import CanaryDeployment

ONE_STAGE = [{"name": "only", "weight": 20, "bake": "PT10M"}]
GUARD = "post-promotion"


async def test_a_breach_after_100_percent_puts_the_old_version_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(breach_in_stage=GUARD)
    spec = unique_spec(task_queue, stages=ONE_STAGE)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert f"stage {GUARD} (100%)" in result.reason
    assert acts.weights == [20, 100]  # never pointed stable at the canary
    assert acts.state.stable_endpoints == (STABLE,) and acts.rollbacks == 1
    assert acts.events[-2:] == ["breach", "rolled_back"]
    breach = acts.notifications[-2]
    assert breach.severity == "P0" and breach.canary_weight == 100
    assert result.evidence is not None and result.evidence.verdict.status == "breach"


async def test_an_abort_during_the_guard_is_the_same_fast_path(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage=GUARD)
    spec = unique_spec(task_queue, stages=[{"name": "only", "weight": 20, "manual_gate": True}])
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t"))
        guarding = await wait_for(handle, lambda s: s.phase == "guarding")
        assert (guarding.stage, guarding.canary_weight) == (GUARD, 100)
        await handle.execute_update(
            CanaryDeployment.abort_update, ControlInput(by="oncall", reason="pager")
        )
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by oncall: pager"
    assert acts.state.stable_endpoints == (STABLE,) and acts.weights == [20, 100]


async def test_a_promote_during_the_guard_ends_it_and_completes_the_promotion(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage=GUARD)
    spec = unique_spec(task_queue, stages=[{"name": "only", "weight": 20, "manual_gate": True}])
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t"))
        await wait_for(handle, lambda s: s.phase == "guarding")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t"))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.weights == [20, 100, 100, 0]
    assert acts.state.stable_endpoints == acts.state.canary_endpoints != (STABLE,)


@pytest.mark.parametrize("watch", ["PT0S"])
async def test_no_guard_when_the_watch_is_zero(
    time_skipping_env: WorkflowEnvironment, task_queue: str, watch: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=ONE_STAGE, post_promotion={"watch": watch})
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.watched == ["only"] and "guarding" not in acts.events
