"""CanaryDeployment's decisions on the time-skipping server: hours of plan run in seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import (
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from bench.scripted import OLD_CANARY, STABLE, ScriptedActivities, make_spec
from frontends.client.deployments import DeploymentAlreadyRunning, start_deployment
from sluicegate.analysis.verdict import Verdict
from sluicegate.contracts import CheckReport, ControlInput, DeploymentStatus, PromoteInput
from sluicegate.spec import DEFAULT_STAGES, DeploymentSpec
from workers.main import build_worker
from workflows.canary import CanaryDeployment

Handle = WorkflowHandle[CanaryDeployment, object]


@asynccontextmanager
async def deployment(
    env: WorkflowEnvironment, task_queue: str, acts: ScriptedActivities, spec: DeploymentSpec
) -> AsyncIterator[Handle]:
    async with build_worker(env.client, task_queue, activities=acts.activities()):
        yield await start_deployment(env.client, spec, task_queue)


async def wait_for(handle: Handle, holds: Callable[[DeploymentStatus], bool]) -> DeploymentStatus:
    """Query `status` until it satisfies `holds` (bounded)."""
    for _ in range(400):
        status = await handle.query(CanaryDeployment.status)
        if holds(status):
            return status
        await asyncio.sleep(0.025)
    raise AssertionError(f"status never got there; last: {status}")


async def a_timer_fired(handle: Handle) -> None:
    """Until the deployment's history has a fired timer (bounded)."""
    for _ in range(400):
        history = await handle.fetch_history()
        if any(e.HasField("timer_fired_event_attributes") for e in history.events):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("no timer fired")


async def watching(handle: Handle) -> DeploymentStatus:
    """Until the first stage bakes and its scripted watcher (which ends at once) has ended,
    in the history (bounded). A control that interrupts the stage earlier cancels a watcher
    that may be completing meanwhile: the time-skipping server refuses that cancel
    (ACTIVITY_UNKNOWN) and the deployment's workflow task never completes."""
    for _ in range(400):
        history = await handle.fetch_history()
        watchers = {
            e.event_id
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "watch_health"
        }
        if any(
            e.activity_task_completed_event_attributes.scheduled_event_id in watchers
            for e in history.events
            if e.HasField("activity_task_completed_event_attributes")
        ):
            return await handle.query(CanaryDeployment.status)
        await asyncio.sleep(0.025)
    raise AssertionError("no watcher ended")


def unique_spec(task_queue: str, **overrides: object) -> DeploymentSpec:
    return make_spec(service=f"svc-{task_queue}", **overrides)


async def test_default_plan_promotes_after_four_hours_with_the_guard(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    before = await time_skipping_env.get_current_time()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
    elapsed = await time_skipping_env.get_current_time() - before
    assert result.outcome == "promoted"
    assert elapsed >= timedelta(hours=4)  # 3 h 30 of stages, then 30 min guarded at 100%
    assert acts.weights == [5, 25, 50, 100, 100, 0]
    assert acts.watched == [*(s.name for s in DEFAULT_STAGES), "post-promotion"]
    # After promotion both clusters serve the new version and stable carries the traffic.
    assert acts.state.stable_endpoints == ("127.0.0.1:18081",)
    assert acts.state.canary_weight == 0
    assert acts.rollbacks == 0


@pytest.mark.parametrize("stage", [s.name for s in DEFAULT_STAGES])
async def test_breach_in_any_stage_restores_the_backup_with_evidence(
    time_skipping_env: WorkflowEnvironment, task_queue: str, stage: str
) -> None:
    acts = ScriptedActivities(breach_in_stage=stage)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert stage in result.reason and "error_rate = 0.05" in result.reason
    assert result.evidence is not None and result.evidence.verdict.status == "breach"
    assert acts.state.canary_weight == 0
    assert acts.state.stable_endpoints == (STABLE,)
    assert acts.state.canary_endpoints == (OLD_CANARY,)
    assert 100 not in acts.weights


async def test_abort_rolls_back_and_records_who_and_why(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await watching(handle)
        status = await handle.execute_update(
            CanaryDeployment.abort_update, ControlInput(by="alice", reason="pager storm")
        )
        assert status.controls[-1].action == "abort"
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by alice: pager storm"
    assert [(c.action, c.by) for c in result.controls] == [("abort", "alice")]
    assert acts.rollbacks == 1 and acts.state.canary_weight == 0


async def test_abort_signal_without_input_still_rolls_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await watching(handle)
        await handle.signal("abort")
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason.startswith("aborted by unknown")


async def test_pause_freezes_the_bake_and_resume_continues(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        status = await handle.execute_update(CanaryDeployment.pause_update, ControlInput(by="bob"))
        assert status.paused
        await wait_for(handle, lambda s: s.phase == "paused")
        await time_skipping_env.sleep(timedelta(hours=5))  # far beyond every bake time
        frozen = await handle.query(CanaryDeployment.status)
        assert (frozen.phase, frozen.stage, frozen.canary_weight) == ("paused", "canary", 5)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(CanaryDeployment.pause_update, ControlInput())
        assert "cannot pause: already paused" in str(refused.value.cause)
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput(by="bob"))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert [c.action for c in result.controls] == ["pause", "resume"]


async def test_promote_full_skips_to_one_hundred_percent(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await watching(handle)
        await handle.execute_update(
            CanaryDeployment.promote_update, PromoteInput(full=True, by="carol", reason="hotfix")
        )
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.weights == [5, 100, 100, 0]
    assert acts.watched == ["canary", "post-promotion"]  # a hotfix is guarded too


async def test_promote_ends_one_stage_early(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await watching(handle)
        await handle.signal(CanaryDeployment.promote_signal, PromoteInput(by="dave"))
        await wait_for(handle, lambda s: s.stage == "pilot")
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.watched == ["canary", "pilot", "gradual", "post-promotion"]


async def test_manual_gate_waits_for_promote(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="review")
    spec = unique_spec(task_queue, stages=[{"name": "review", "weight": 10, "manual_gate": True}])
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "awaiting_approval")
        assert acts.weights == [10]
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="erin"))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.weights == [10, 100, 100, 0]


async def test_cancellation_still_rolls_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await watching(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert acts.rollbacks == 1
    assert acts.state.canary_weight == 0 and acts.state.canary_endpoints == (OLD_CANARY,)


async def test_a_cancel_during_a_shift_rolls_back_only_after_the_shift_stopped(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hang_set_traffic_at_weight=25)
    stages = [
        {"name": "canary", "weight": 5, "bake": "PT1S"},
        {"name": "pilot", "weight": 25, "bake": "PT1S"},
    ]
    spec = unique_spec(task_queue, stages=stages)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.stage == "pilot")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    # A shift still in flight could otherwise land after the restore.
    assert acts.steps == ["shift cancelled", "rollback"]
    assert acts.state.canary_weight == 0


@pytest.mark.parametrize(
    ("action", "control", "refusal"),
    [
        ("resume", CanaryDeployment.resume_update, "not paused"),
        ("promote", CanaryDeployment.promote_update, "being aborted"),
        ("pause", CanaryDeployment.pause_update, "being aborted"),
    ],
)
async def test_update_validators_refuse_what_makes_no_sense(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    action: str,
    control: Callable[..., Awaitable[DeploymentStatus]],
    refusal: str,
) -> None:
    acts = ScriptedActivities(hold_in_stage="canary")
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        # The first shift has landed (phase progressing comes just before it).
        await wait_for(handle, lambda s: s.phase == "progressing" and s.canary_weight > 0)
        if action != "resume":
            await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="ops"))
            await wait_for(handle, lambda s: len(s.controls) == 1)
        request = PromoteInput() if action == "promote" else ControlInput()
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(control, request)
        # Once aborted, the rollback may have begun, or ended, by the time the update lands.
        refusals = (
            (refusal, "rolling back", "already rolled_back")
            if refusal == "being aborted"
            else (refusal,)
        )
        assert any(r in str(refused.value.cause) for r in refusals), refused.value.cause
        if action == "resume":  # not aborted above
            await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="cleanup"))
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert all(c.action == "abort" for c in result.controls)


async def test_unrecoverable_router_error_rolls_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(fail_set_traffic_at_weight=25)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert "unrecoverable error" in result.reason and "router on fire" in result.reason
    assert acts.rollbacks == 1 and acts.state.canary_weight == 0


async def test_failed_backup_moves_no_traffic(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(fail_backup=True)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
    assert result.outcome == "not_started"  # nothing was rolled out: not a failed release
    assert "backup failed, no traffic moved" in result.reason
    assert result.canary_weight is None  # the router was left exactly as found
    assert acts.applied == [] and acts.rollbacks == 0


async def test_rollback_keeps_retrying_until_it_succeeds(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(breach_in_stage="canary", rollback_failures=12)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outcome == "rolled_back"
    assert acts.rollbacks == 13 and acts.state.canary_weight == 0
    pauses = [
        seconds
        for e in history.events
        if e.HasField("timer_started_event_attributes")
        and (seconds := e.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()) <= 30
    ]
    assert pauses == [2, 4]  # two failed rounds of five: retried soon, then backing off


async def test_a_second_deployment_of_the_same_service_is_refused(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="canary")
    spec = unique_spec(task_queue)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        with pytest.raises(DeploymentAlreadyRunning, match=f"deploy-{spec.service}"):
            await start_deployment(time_skipping_env.client, spec, task_queue)
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
        # not_started if the abort came while stable was measured, before any traffic moved
        assert (await handle.result()).outcome in ("rolled_back", "not_started")


async def test_an_invalid_spec_fails_the_workflow_naming_each_bad_field(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    raw = make_spec().model_dump(mode="json")
    raw["service"] = "Not OK"
    raw["stages"] = [{"name": "a", "weight": 50, "bake": "PT1M"}, {"name": "b", "weight": 20}]
    async with build_worker(time_skipping_env.client, task_queue, activities=acts.activities()):
        # The JSON a user gives `temporal workflow start --input-file` arrives untyped.
        handle = await time_skipping_env.client.start_workflow(
            "CanaryDeployment", raw, id=f"deploy-bad-{task_queue}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = str(failure.value.cause)
    assert "service: must be 1-63 characters" in message
    assert "stages.1: stage 'b': give a bake time, a manual_gate, or both" in message
    assert acts.applied == []


async def test_pause_keeps_the_bake_time_already_served(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    acts = ScriptedActivities()
    async with deployment(env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        await env.sleep(timedelta(minutes=10))  # 10 of the canary stage's 30 minutes
        await handle.execute_update(CanaryDeployment.pause_update, ControlInput())
        await wait_for(handle, lambda s: s.phase == "paused")
        await env.sleep(timedelta(hours=1))
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput())
        await wait_for(handle, lambda s: s.phase == "progressing")
        await env.sleep(timedelta(minutes=19))
        assert (await handle.query(CanaryDeployment.status)).stage == "canary"
        await env.sleep(timedelta(minutes=2))
        await wait_for(handle, lambda s: s.stage == "pilot")
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
        assert (await handle.result()).outcome == "rolled_back"


async def test_a_cancel_during_a_failing_rollback_does_not_abandon_it(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(breach_in_stage="canary", rollback_failures=7)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "failed")
        await handle.cancel()
        result = await handle.result()
    assert result.outcome == "rolled_back"
    assert acts.state.canary_weight == 0 and acts.rollbacks == 8


async def test_an_abort_before_the_first_shift_moves_no_traffic(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    async with build_worker(time_skipping_env.client, task_queue, activities=acts.activities()):
        spec = unique_spec(task_queue)
        handle = await time_skipping_env.client.start_workflow(
            CanaryDeployment.run,
            spec,
            id=spec.workflow_id,
            task_queue=task_queue,
            start_signal="abort",
            start_signal_args=[ControlInput(by="early", reason="changed my mind")],
        )
        result = await handle.result()
    assert result.reason == "aborted by early: changed my mind"
    assert result.outcome == "not_started"
    assert acts.weights == []


async def test_updates_work_without_input(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="canary")
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        status = await handle.execute_update("pause", result_type=DeploymentStatus)
        assert status.paused and status.controls[-1].by == "unknown"
        await handle.execute_update("abort", result_type=DeploymentStatus)
        assert (await handle.result()).outcome == "rolled_back"


async def test_a_stage_moves_on_only_after_a_healthy_check(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="only")  # a watcher that has judged nothing yet
    spec = unique_spec(task_queue, stages=[{"name": "only", "weight": 10, "bake": "PT1S"}])
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await a_timer_fired(handle)
        status = await handle.query(CanaryDeployment.status)
        assert (status.phase, status.stage, acts.weights) == ("progressing", "only", [10])
        healthy = CheckReport(
            stage="only",
            at=datetime.now(UTC),
            number=1,
            verdict=Verdict(status="healthy", results=()),
        )
        await handle.signal(CanaryDeployment.health_report, healthy)
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.weights == [10, 100, 100, 0]


def check(stage: str, status: str, number: int) -> CheckReport:
    verdict = Verdict(status=status, results=())  # type: ignore[arg-type]
    return CheckReport(stage=stage, at=datetime.now(UTC), number=number, verdict=verdict)


async def test_no_data_past_the_limit_pauses_for_a_person_and_old_evidence_lapses(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="only")  # the watcher is driven by hand
    spec = unique_spec(
        task_queue,
        stages=[{"name": "only", "weight": 10, "bake": "PT1S"}],
        analysis={**make_spec().analysis.model_dump(mode="json"), "on_inconclusive": "pause"},
    )
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        await handle.signal(CanaryDeployment.health_report, check("only", "healthy", 1))
        with pytest.raises(WorkflowUpdateFailedError):  # not the stage being watched
            await handle.execute_update(
                CanaryDeployment.health_lapsed, check("other", "inconclusive", 8)
            )
        paused = await handle.execute_update(
            CanaryDeployment.health_lapsed, check("only", "inconclusive", 8)
        )
        assert (paused.paused, paused.controls[-1].by) == (True, "sluicegate")
        assert paused.controls[-1].reason.startswith("no data for 7 checks in a row")
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # asked again: no trace
            await handle.execute_update(
                CanaryDeployment.health_lapsed, check("only", "inconclusive", 9)
            )
        assert "already paused" in str(refused.value.cause)
        await wait_for(handle, lambda s: s.phase == "paused")
        await handle.execute_update(CanaryDeployment.resume_update, ControlInput(by="carol"))
        await a_timer_fired(handle)  # the bake runs out after the resume
        # The healthy check from before the lapse no longer counts: the stage waits.
        status = await handle.query(CanaryDeployment.status)
        assert (status.phase, status.paused, acts.weights) == ("progressing", False, [10])
        await handle.signal(CanaryDeployment.health_report, check("only", "healthy", 10))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert [(c.action, c.by) for c in result.controls] == [
        ("pause", "sluicegate"),
        ("resume", "carol"),
    ]
    assert "paused" in acts.events and "resumed" in acts.events


async def test_malformed_control_input_never_breaks_the_deployment(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_in_stage="canary")
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "progressing")
        await handle.signal("abort", "just a string")  # what a hurried CLI user might send
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update("pause", {"by": "x", "paused": "yes"})
        status = await handle.query(CanaryDeployment.status)
        assert (status.phase, status.paused, status.controls) == ("progressing", False, ())
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="ops", reason="ok"))
        result = await handle.result()
    assert result.outcome == "rolled_back" and result.reason == "aborted by ops: ok"
