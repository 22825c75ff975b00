"""What the deployment workflow tells people, in order and with the right urgency, on the
time-skipping server with scripted activities; the real delivery is in test_e2e.py."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from bench.scripted import ScriptedActivities
from sluicegate.contracts import ControlInput, PromoteInput
from tests.test_workflow import deployment, unique_spec, wait_for
from workflows.canary import CanaryDeployment

THREE_STAGES = [
    {"name": "canary", "weight": 5, "bake": "PT10M"},
    {"name": "pilot", "weight": 50, "bake": "PT10M"},
    {"name": "full", "weight": 100, "bake": "PT10M"},
]


async def test_a_promotion_is_told_stage_by_stage(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue, stages=THREE_STAGES)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
    assert result.outcome == "promoted" and result.notification_failures == ()
    assert acts.events == ["started", *["stage_advanced"] * 3, "guarding", "promoted"]
    assert {n.severity for n in acts.notifications} == {"P3"}
    stages = [(n.stage, n.canary_weight) for n in acts.notifications if n.event == "stage_advanced"]
    assert stages == [("canary", 5), ("pilot", 50), ("full", 100)]
    assert all(n.run_id == handle.result_run_id for n in acts.notifications)
    plan = "canary 5% for 10m; pilot 50% for 10m; full 100% for 10m; checks every 10s"
    assert plan in acts.notifications[0].summary


async def test_a_breach_pages_by_weight_with_the_failing_numbers(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    for stage, severity in (("canary", "P2"), ("pilot", "P1"), ("full", "P0")):
        acts = ScriptedActivities(breach_in_stage=stage)
        spec = unique_spec(f"{task_queue}-{stage}", stages=THREE_STAGES)
        async with deployment(time_skipping_env, f"{task_queue}-{stage}", acts, spec) as handle:
            result = await handle.result()
        assert result.outcome == "rolled_back"
        assert acts.events[-2:] == ["breach", "rolled_back"]
        breach, rolled_back = acts.notifications[-2:]
        assert (breach.stage, breach.severity) == (stage, severity)
        assert breach.evidence == ("error_rate = 0.05 (must be <= 0.01; 400 canary requests "
                                   "this check)",)  # fmt: skip
        assert rolled_back.severity == "P3" and "rolled back to 100% v1" in rolled_back.summary


async def test_controls_are_told_with_who_sent_them(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="canary")
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        # The first stage's shift has landed and been told (phase progressing comes first).
        await wait_for(handle, lambda s: s.phase == "progressing" and s.canary_weight > 0)
        await handle.execute_update(CanaryDeployment.pause_update, ControlInput(by="bob"))
        await handle.execute_update(
            CanaryDeployment.resume_update, ControlInput(by="bob", reason="batch done")
        )
        await handle.execute_update(CanaryDeployment.abort_update, ControlInput(by="carol"))
        result = await handle.result()
    assert acts.events == [
        "started",
        "stage_advanced",
        "paused",
        "resumed",
        "abort_requested",
        "rolled_back",
    ]
    paused, resumed, aborted, rolled_back = acts.notifications[2:]
    assert (paused.by, resumed.by, resumed.summary) == ("bob", "bob", "resumed: batch done")
    assert (aborted.by, aborted.summary) == ("carol", "abort requested")
    assert "aborted by carol" in rolled_back.summary
    assert result.outcome == "rolled_back"


async def test_a_manual_gate_asks_for_a_decision(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="review")
    stages = [{"name": "review", "weight": 20, "manual_gate": True}]
    async with deployment(
        time_skipping_env, task_queue, acts, unique_spec(task_queue, stages=stages)
    ) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="dana"))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.events == [
        "started", "stage_advanced", "awaiting_approval", "promote_requested", "guarding",
        "promoted",
    ]  # fmt: skip
    gate = acts.notifications[2]
    assert gate.offers_decision and "waits for approval" in gate.summary


async def test_a_failing_rollback_pages_p0_once(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(breach_in_stage="canary", rollback_failures=12)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert acts.events[-3:] == ["breach", "rollback_failing", "rolled_back"]
    failing = acts.notifications[-2]
    assert failing.severity == "P0" and "router unreachable" in failing.summary


async def test_a_broken_notifier_never_stops_the_deployment(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(notify_fails=True, hold_in_stage="canary")
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        await handle.execute_update(
            CanaryDeployment.promote_update, PromoteInput(full=True, by="erin")
        )
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.weights[-1] == 0 and acts.state.stable_endpoints == (acts.state.canary_endpoints)
    assert result.notification_failures[0] == "started → notifier crashed"
    assert [f.split(" → ")[0] for f in result.notification_failures] == [
        "started", "stage_advanced", "promote_requested", "guarding", "promoted",
    ]  # fmt: skip
