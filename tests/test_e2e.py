"""End to end on the real dev server, with real Envoy, sample services and load."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from deploy.processes import venv_binary
from deploy.sample_service import set_fault
from deploy.stack import LocalStack, Site
from frontends.client.deployments import live_check, start_deployment
from frontends.client.history import list_deployments
from frontends.client.operations import control
from sluicegate.contracts import ControlInput, DeploymentStatus, PromoteInput, RouterState
from sluicegate.settings import Settings
from sluicegate.spec import MetricCheck
from tests.stack_fixtures import sluice_worker
from tests.waiting import eventually
from workers.client import connect
from workflows.canary import CanaryDeployment

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "e2e"


@pytest.fixture(scope="session")
async def temporal(stack: LocalStack, dev_server: str) -> AsyncIterator[tuple[str, Client]]:
    """A client, and a worker process on TASK_QUEUE stopped by PID at the end: an
    in-process worker's shutdown can wait forever on a deployment a failed test left
    running, which hung a whole CI run."""
    client = await connect(Settings(temporal_address=dev_server))
    async with sluice_worker(stack, dev_server, TASK_QUEUE):
        yield dev_server, client


async def status_of(client: Client, workflow_id: str) -> DeploymentStatus:
    return await client.get_workflow_handle(workflow_id).query(CanaryDeployment.status)


async def test_healthy_canary_is_promoted_and_envoy_serves_it(
    temporal: tuple[str, Client], site: Site
) -> None:
    _, client = temporal
    # One slow check on a busy CI machine must not fail a test of the promotion path.
    handle = await start_deployment(client, site.spec(failed_checks_tolerated=1), TASK_QUEUE)
    result = await handle.result()
    assert result.outcome == "promoted", result.reason
    state = await site.router_state()
    assert state == RouterState(
        canary_weight=0,
        stable_endpoints=(site.canary.address,),
        canary_endpoints=(site.canary.address,),
    )
    query = f'DeployService = "{site.name}" AND DeployOutcome = "promoted"'

    async def listed() -> bool:
        return [w.id async for w in client.list_workflows(query)] == [handle.id]

    await eventually(listed, "the promoted deployment is listed by its search attributes")


async def test_injected_errors_are_rolled_back_to_zero_percent(
    temporal: tuple[str, Client], site: Site
) -> None:
    _, client = temporal
    stages = [
        {"name": "canary", "weight": 5, "bake": "PT2S"},
        {"name": "pilot", "weight": 50, "bake": "PT5M"},
    ]
    handle = await start_deployment(client, site.spec(stages=stages), TASK_QUEUE)

    async def at_pilot() -> bool:
        return (await status_of(client, handle.id)).canary_weight == 50

    await eventually(at_pilot, "the deployment reaches 50%")
    set_fault(site.canary.port, error_rate=0.3, delay_ms=0)
    result = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.evidence is not None
    breached = {m.metric for m in result.evidence.verdict.breaches}
    assert breached & {"error_rate", "availability"}, result.reason  # either proves it
    assert await site.router_state() == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )


async def temporal_cli(address: str, *args: str, ok: bool = True) -> str:
    """Run the real `temporal` CLI binary against the dev server; returns stdout + stderr.

    In a thread: the worker of these tests runs on this event loop and must answer."""
    argv = [venv_binary("temporal"), "workflow", *args, "--address", address]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    assert (done.returncode == 0) == ok, f"exit {done.returncode}:\n{output}"
    return output


async def test_the_temporal_cli_path_as_the_readme_gives_it(
    temporal: tuple[str, Client], site: Site, tmp_path: Path
) -> None:
    """Start, pause, query, resume, find and abort with nothing but the `temporal` CLI."""
    address, client = temporal
    spec = site.spec(stages=[{"name": "canary", "weight": 20, "bake": "PT10M"}])
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.model_dump_json())
    wid = ("--workflow-id", spec.workflow_id)
    start = (
        "start", "--type", "CanaryDeployment", "--task-queue", TASK_QUEUE, *wid,
        "--input-file", str(spec_file), "--id-conflict-policy", "Fail", "--fail-existing",
        "--static-summary", f"{spec.service}: v1 → v2", "--static-details", "Stages: canary 20%",
    )  # fmt: skip
    await temporal_cli(address, *start)
    assert "already" in (await temporal_cli(address, *start, ok=False)).lower()
    described = await client.get_workflow_handle(spec.workflow_id).describe()
    assert await described.static_summary() == f"{spec.service}: v1 → v2"  # as the Web UI shows
    assert await described.static_details() == "Stages: canary 20%"

    async def shifted() -> bool:
        return (await site.router_state()).canary_weight == 20

    await eventually(shifted, "Envoy sends 20% to the canary")
    pause = '{"by": "oncall", "reason": "lunch"}'
    await temporal_cli(address, "signal", *wid, "--name", "pause", "--input", pause)

    async def paused() -> bool:
        query = await temporal_cli(address, "query", *wid, "--name", "status", "--output", "json")
        return '"phase": "paused"' in query.replace('":"', '": "')

    await eventually(paused, "the status query says paused", attempts=100)
    resume = ("update", "execute", *wid, "--name", "resume", "--input", '{"by": "oncall"}')
    assert "paused:false" in await temporal_cli(address, *resume)  # the update answers the status
    refused = await temporal_cli(address, *resume, ok=False)
    assert "cannot resume: deployment is not paused" in refused
    listed = await temporal_cli(address, "list", "--query", f'DeployService = "{spec.service}"')
    assert spec.workflow_id in listed and "Running" in listed

    abort = '{"by": "oncall", "reason": "dashboards look odd"}'
    await temporal_cli(address, "signal", *wid, "--name", "abort", "--input", abort)
    result = await client.get_workflow_handle_for(CanaryDeployment.run, spec.workflow_id).result()
    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by oncall: dashboards look odd"
    assert [(c.action, c.by) for c in result.controls] == [
        ("pause", "oncall"),
        ("resume", "oncall"),
        ("abort", "oncall"),
    ]
    assert (await site.router_state()).canary_weight == 0


async def test_manual_gate_promoted_by_update(temporal: tuple[str, Client], site: Site) -> None:
    _, client = temporal
    stages = [{"name": "review", "weight": 10, "manual_gate": True}]
    spec = site.spec(stages=stages, failed_checks_tolerated=1)
    handle = await start_deployment(client, spec, TASK_QUEUE)

    async def waiting() -> bool:
        return (await status_of(client, handle.id)).phase == "awaiting_approval"

    await eventually(waiting, "the deployment waits at its manual gate")

    async def reported_healthy() -> bool:
        check = (await status_of(client, handle.id)).latest_check
        return check is not None and check.verdict.status == "healthy"

    await eventually(reported_healthy, "the watcher reports a healthy check to the workflow")
    status = await handle.execute_update(
        CanaryDeployment.promote_update, PromoteInput(by="release-manager")
    )
    assert status.pending_promote is not None and status.pending_promote.by == "release-manager"
    result = await handle.result()
    assert result.outcome == "promoted"
    assert (await site.router_state()).stable_endpoints == (site.canary.address,)


async def test_envoy_restart_is_noticed_as_drift_and_repaired(
    temporal: tuple[str, Client], site: Site
) -> None:
    _, client = temporal
    stages = [{"name": "canary", "weight": 30, "bake": "PT10M"}]
    handle = await start_deployment(client, site.spec(stages=stages), TASK_QUEUE)

    async def weight_is_30() -> bool:
        return (await site.router_state()).canary_weight == 30

    await eventually(weight_is_30, "Envoy sends 30% to the canary")
    site.envoy.restart()  # the admin runtime is lost: Envoy falls back to 0% canary
    await eventually(weight_is_30, "the watcher re-applies 30% after the restart")
    await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
    assert (await handle.result()).outcome == "rolled_back"


async def test_a_stopped_watcher_does_not_undo_the_rollback(
    stack: LocalStack, dev_server: str, temporal: tuple[str, Client], site: Site
) -> None:
    """The workflow rolls back without waiting for the watcher, which hears of it only at
    its next heartbeat, a check later: that check reads 0%, and must leave it."""
    _, client = temporal
    task_queue = "e2e-stale-watcher"  # its own worker, whose log the test reads
    async with sluice_worker(stack, dev_server, task_queue) as worker:
        stages = [{"name": "canary", "weight": 30, "bake": "PT10M"}]
        spec = site.spec(stages=stages, interval=timedelta(seconds=3))
        handle = await start_deployment(client, spec, task_queue)

        async def watched_at_30() -> bool:
            return await live_check(client, handle.id) is not None

        await eventually(watched_at_30, "the watcher heartbeats its first check", attempts=1200)
        await handle.signal(CanaryDeployment.abort_signal, ControlInput(by="test"))
        assert (await handle.result()).outcome == "rolled_back"
        await eventually(
            lambda: "not re-applied" in worker.log.read_text(errors="replace"),
            "the stopped watcher's next check reads the rollback and leaves it",
            attempts=1200,
        )
        assert (await site.router_state()).canary_weight == 0


async def test_a_deployment_survives_its_worker_being_killed(
    stack: LocalStack, temporal: tuple[str, Client], site: Site
) -> None:
    address, client = temporal
    task_queue = "e2e-crash"  # served only by the worker processes below
    worker = stack.worker(address, task_queue)
    stages = [
        {"name": "canary", "weight": 5, "bake": "PT2S"},
        {"name": "pilot", "weight": 25, "bake": "PT20S"},
    ]
    spec = site.spec(stages=stages, failed_checks_tolerated=1)
    handle = await start_deployment(client, spec, task_queue)

    async def watched_at_25() -> bool:
        check = await live_check(client, handle.id)
        return check is not None and check.stage == "pilot"

    await eventually(watched_at_25, "the pilot stage's watcher heartbeats", attempts=1200)
    worker.kill()  # SIGKILL: no clean shutdown, the watcher's heartbeats stop mid-stage
    stack.worker(address, task_queue)
    result = await handle.result()
    assert result.outcome == "promoted", result.reason
    assert (await site.router_state()).stable_endpoints == (site.canary.address,)
    history = await handle.fetch_history()
    retried = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(retried) >= 2  # the pilot watcher was picked up again after the crash


# Absolute limits only a badly broken canary reaches, so that the comparison decides.
RELAXED = (
    MetricCheck(metric="error_rate", max=0.5),
    MetricCheck(metric="latency_p99_ms", max=5000),
)


async def test_a_canary_with_twice_stables_errors_is_rolled_back_below_the_limit(
    stack: LocalStack, temporal: tuple[str, Client]
) -> None:
    """0.9% errors against stable's 0.45%: under the absolute 1% limit, caught by comparison."""
    _, client = temporal
    site = Site(stack, "relative-errors", error_rates=(0.0045, 0.009))
    try:
        spec = site.spec(stages=[{"name": "half", "weight": 50, "bake": "PT10M"}], mode="both")
        spec = spec.model_copy(
            update={"analysis": spec.analysis.model_copy(update={"metrics": RELAXED})}
        )
        result = await (await start_deployment(client, spec, TASK_QUEUE)).result()
    finally:
        site.stop()
    assert result.outcome == "rolled_back", result.reason
    assert result.evidence is not None
    breaches = {c.metric: c for c in result.evidence.verdict.comparisons if c.status == "breach"}
    assert "errors" in breaches, result.reason
    errors = breaches["errors"]
    assert errors.e_value >= errors.bound
    assert errors.rate_ratio is not None and errors.rate_ratio > 1
    assert "errors: canary" in result.reason  # the evidence, in the rollback reason


async def test_a_healthy_canary_at_low_traffic_is_promoted(
    stack: LocalStack, temporal: tuple[str, Client]
) -> None:
    """About 1 canary request a second with the default `mode: both` and tolerances:
    every 3-s check window is too small for the thresholds, the stage's comparison is not."""
    _, client = temporal
    site = Site(stack, "low-traffic", rps=20)
    try:
        stages = [{"name": "canary", "weight": 5, "bake": "PT15S"}]
        spec = site.spec(stages=stages, interval=timedelta(seconds=3))
        assert (spec.analysis.mode, spec.analysis.inconclusive_checks_tolerated) == ("both", 6)
        result = await (await start_deployment(client, spec, TASK_QUEUE)).result()
    finally:
        site.stop()
    assert result.outcome == "promoted", result.reason


async def test_a_regression_after_100_percent_is_caught_by_the_guard(
    temporal: tuple[str, Client], site: Site
) -> None:
    _, client = temporal
    spec = site.spec(
        stages=[{"name": "canary", "weight": 20, "bake": "PT3S"}],
        guard=timedelta(minutes=10),
        failed_checks_tolerated=1,
    )
    handle = await start_deployment(client, spec, TASK_QUEUE)

    async def guarding() -> bool:
        status = await status_of(client, handle.id)
        check = await live_check(client, handle.id)
        return status.phase == "guarding" and check is not None and check.number >= 2

    await eventually(guarding, "the guard judges v2 at 100%", attempts=2400)
    # At 100% the old version is still registered: the stable cluster still names v1.
    assert (await site.router_state()).stable_endpoints == (site.stable.address,)
    set_fault(site.canary.port, error_rate=0.3, delay_ms=0)
    result = await handle.result()
    assert result.outcome == "rolled_back", result.reason
    assert "post-promotion (100%)" in result.reason
    assert await site.router_state() == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )


async def test_a_gate_held_for_long_continues_as_new_and_a_button_of_its_first_run_promotes_it(
    temporal: tuple[str, Client], site: Site
) -> None:
    """Held past `continue_as_new_after`, the deployment goes on in new runs whose watcher
    numbers on from the last; a control naming the first run (an old Slack button) steers
    the latest, and `history` lists the deployment once, from its first run's start."""
    _, client = temporal
    stages = [{"name": "review", "weight": 10, "manual_gate": True}]
    spec = site.spec(
        stages=stages, failed_checks_tolerated=1, top_level={"continue_as_new_after": "PT3S"}
    )
    handle = await start_deployment(client, spec, TASK_QUEUE)
    first_run = handle.first_execution_run_id
    assert first_run is not None

    async def numbered_on() -> bool:
        check = await live_check(client, handle.id)
        description = await client.get_workflow_handle(handle.id).describe()
        # A fresh watcher every run would number its checks from 1 to about 4, each run.
        return description.run_id != first_run and check is not None and check.number >= 10

    await eventually(
        numbered_on, "the later runs' watchers number on from the first's", attempts=2400
    )
    assert (await status_of(client, handle.id)).phase == "awaiting_approval"
    await control(client, site.name, "promote", PromoteInput(by="slack"), run_id=first_run)
    result = await handle.result()
    assert result.outcome == "promoted"
    assert [c.by for c in result.controls] == ["slack"]
    first = await client.get_workflow_handle(handle.id, run_id=first_run).describe()
    records = [r for r in await list_deployments(client, site.name) if r.workflow_id == handle.id]
    assert len(records) == 1 and records[0].first_run_id == first_run
    assert records[0].started_at == first.start_time
