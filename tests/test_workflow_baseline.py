"""Stable watched before any traffic moves, and stages watched for their whole bake: the
deployment workflow on the time-skipping server with scripted activities."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from bench.scripted import ScriptedActivities, a_baseline, make_spec
from sluicegate.contracts import ControlInput, PromoteInput
from sluicegate.describe import watched_line
from tests.test_workflow import Handle, deployment, unique_spec, wait_for
from workflows.canary import CanaryDeployment

ONE_STAGE = [{"name": "only", "weight": 10, "bake": "PT30M"}]
BASELINE_LINES = (
    "stable within error_rate ≤ 1% (0.3% measured)",
    "stable within latency_p99_ms ≤ 200 (0.5% slower than 200 ms measured)",
    "stable already breaches availability ≥ 99.9% (99.7% measured)",
)


def with_baseline(task_queue: str, baseline: str, **overrides: object) -> object:
    analysis = {**make_spec().analysis.model_dump(mode="json"), "baseline": baseline}
    return unique_spec(task_queue, analysis=analysis, **overrides)


async def scheduled(handle: Handle, activity_type: str) -> list[object]:
    """The scheduling of each `activity_type` activity in the deployment's history."""
    history = await handle.fetch_history()
    return [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    ]


async def bake_timers(handle: Handle) -> list[tuple[float, str]]:
    """(seconds, summary) of every bake timer the deployment started, in order."""
    history = await handle.fetch_history()
    timers = [
        (
            e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds(),
            e.user_metadata.summary.data.decode().strip('"'),
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    return [t for t in timers if t[1].startswith(("bake ", "make up "))]


async def test_stable_is_measured_before_any_traffic_moves_and_every_watcher_gets_it(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = unique_spec(task_queue)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        result = await handle.result()
        (measure,) = await scheduled(handle, "measure_baseline")
    assert result.outcome == "promoted"
    assert acts.calls[:4] == ["backup", "measure_baseline", "set_traffic 5%", "watch_health canary"]
    assert acts.calls.count("measure_baseline") == 1
    (request,) = acts.baseline_inputs
    assert (request.service, request.stable_version, request.canary_version) == (
        spec.service,
        "v1",
        "v2",
    )
    assert request.analysis == spec.analysis
    assert [w.stage for w in acts.watch_inputs] == ["canary", "pilot", "gradual", "post-promotion"]
    assert all(w.baseline == acts.baseline for w in acts.watch_inputs)
    attributes = measure.activity_task_scheduled_event_attributes
    assert attributes.start_to_close_timeout.ToSeconds() == 60 + 60  # the baseline + 60 s
    assert attributes.heartbeat_timeout.ToSeconds() == 5
    assert b"watch stable 1m before any traffic" in measure.user_metadata.summary.data
    # The started notification goes out once stable is measured, with its numbers.
    started = acts.notifications[0]
    assert (started.event, started.canary_weight) == ("started", 0)
    assert started.evidence == BASELINE_LINES


async def test_the_baseline_is_in_the_status_and_the_web_ui_details(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    baseline = a_baseline(errors=5)  # within every limit
    acts = ScriptedActivities(hold_in_stage="canary", baseline=baseline)
    spec = unique_spec(task_queue)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        status = await wait_for(handle, lambda s: s.phase == "progressing")
        assert (status.baseline, status.no_baseline) == (baseline, None)
        assert status.baseline_lines == baseline.lines(spec.analysis)
        details = await current_details(handle)
        lines = baseline.lines(spec.analysis)
        assert len(lines) == 3 and all(line.startswith("stable within ") for line in lines)
        listed = "\n".join(
            ["Stable before the deployment (1m, 10000 requests):"] + [f"- {line}" for line in lines]
        )
        assert listed in details
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
        assert (await handle.result()).outcome == "rolled_back"


async def current_details(handle: Handle) -> str:
    """The deployment's current details, as the Web UI reads them."""
    from temporalio.api.sdk.v1 import WorkflowMetadata

    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_no_baseline_when_the_spec_says_zero(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities()
    spec = with_baseline(task_queue, "PT0S", stages=ONE_STAGE)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:  # type: ignore[arg-type]
        result = await handle.result()
        assert await scheduled(handle, "measure_baseline") == []
    assert result.outcome == "promoted"
    assert "measure_baseline" not in acts.calls
    assert [w.baseline for w in acts.watch_inputs] == [None, None]  # the stage, the guard
    assert acts.notifications[0].evidence == (
        "stable not measured (analysis.baseline is 0): limits are held as written",
    )


async def test_a_baseline_that_cannot_be_measured_leaves_the_limits_as_written(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(fail_baseline=True, hold_in_stage="only")
    spec = unique_spec(task_queue, stages=ONE_STAGE)
    async with deployment(time_skipping_env, task_queue, acts, spec) as handle:
        status = await wait_for(handle, lambda s: s.phase == "progressing")
        assert status.baseline is None
        failed = "could not be measured (MetricsUnavailable: prometheus down)"
        assert status.no_baseline == failed
        details = await current_details(handle)
        assert status.baseline_lines == (f"stable {failed}: limits are held as written",)
        assert f"Stable before the deployment:\n- {status.baseline_lines[0]}" in details
        await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="test"))
        result = await handle.result()
    assert result.outcome == "promoted"
    assert acts.calls[:3] == ["backup", "measure_baseline", "set_traffic 10%"]
    assert [w.baseline for w in acts.watch_inputs] == [None, None]  # the stage, the guard
    started = acts.notifications[0]
    assert started.event == "started"
    assert started.evidence == (f"stable {failed}: limits are held as written",)


async def test_an_abort_while_stable_is_measured_ends_it_at_once_not_started(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_baseline=True)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "measuring_baseline")
        for control, refusal in (
            (CanaryDeployment.promote_update, "nothing to promote yet (measuring_baseline)"),
            (CanaryDeployment.pause_update, "nothing to pause while measuring_baseline"),
        ):
            request = PromoteInput() if control is CanaryDeployment.promote_update else None
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(control, request or ControlInput())
            assert refusal in str(refused.value.cause)
        await handle.execute_update(
            CanaryDeployment.abort_update, ControlInput(by="alice", reason="wrong build")
        )
        result = await handle.result()
    assert (result.outcome, result.reason) == ("not_started", "aborted by alice: wrong build")
    assert result.canary_weight == 0 and acts.weights == []
    # The measuring is stopped before the rollback; nothing was started, so only the abort
    # and the outcome are told.
    assert acts.steps == ["baseline cancelled", "rollback"]
    assert acts.events == ["abort_requested", "not_started"]


async def test_a_cancel_while_stable_is_measured_rolls_back(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    acts = ScriptedActivities(hold_baseline=True)
    async with deployment(time_skipping_env, task_queue, acts, unique_spec(task_queue)) as handle:
        await wait_for(handle, lambda s: s.phase == "measuring_baseline")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert acts.steps == ["baseline cancelled", "rollback"]
    assert acts.weights == [] and acts.state.canary_weight == 0


async def test_the_status_says_how_much_of_the_bake_was_watched(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    env = time_skipping_env
    unwatched = timedelta(minutes=2)
    # Time skips only in env.sleep (and while waiting for the result): the test sees the
    # bake before its timer ran out, and while the unwatched time is made up.
    acts = ScriptedActivities(unwatched_in_stage=("only", unwatched))
    spec = unique_spec(task_queue, stages=ONE_STAGE)
    async with deployment(env, task_queue, acts, spec) as handle:
        told = await wait_for(
            handle, lambda s: s.bake is not None and s.bake.unwatched > timedelta(0)
        )
        assert told.bake is not None
        assert (told.bake.unwatched, told.bake.made_up) == (unwatched, timedelta(0))
        assert "(2m unwatched, to be made up)" in (watched_line(told.bake) or "")
        await env.sleep(timedelta(minutes=30))  # the bake's timer runs out
        making_up = await wait_for(
            handle, lambda s: s.bake is not None and s.bake.made_up > timedelta(0)
        )
        bake = making_up.bake
        assert bake is not None and bake.ends_at is not None
        assert (bake.total, bake.left, bake.unwatched, bake.made_up) == (
            timedelta(minutes=30),
            unwatched,
            unwatched,
            unwatched,
        )
        assert watched_line(bake) == "watched 28m of 30m bake (2m unwatched, made up)"
        assert "Bake: watched 28m of 30m bake (2m unwatched, made up)" in (
            await current_details(handle)
        )
        assert (making_up.phase, making_up.stage, acts.weights) == ("progressing", "only", [10])
        result = await handle.result()  # the made-up time runs out: the stage moves on
        timers = await bake_timers(handle)
    assert result.outcome == "promoted"
    assert timers[:2] == [(1800, "bake 30m at 10%"), (120, "make up 2m unwatched at 10%")]
    assert timers[2:] == [(1800, "bake 30m at 100%")]  # the guard after promotion
