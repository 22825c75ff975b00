"""SupersedeDeployment on the time-skipping server: abort the running deployment, wait until
it has rolled back, then start the new one on `deploy-<service>`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.supersede import SUPERSEDE_ACTIVITIES
from bench.scripted import OLD_CANARY, STABLE, ScriptedActivities, make_spec
from frontends.client.deployments import (
    handle_for,
    query_status,
    start_deployment,
    supersede_deployment,
    superseded,
)
from frontends.client.operations import start_restore
from sluicegate.contracts import (
    BACKUP,
    ROLLBACK,
    SUPERSEDE_DEPLOYMENT,
    DeploymentResult,
    DeploymentStatus,
    SupersedeInput,
    SupersedeResult,
    supersede_id_for,
)
from sluicegate.errors import DeploymentAlreadyRunning
from sluicegate.spec import DeploymentSpec
from tests.test_restore_workflow import restore_input
from tests.waiting import eventually
from workers.main import build_worker

V3 = "127.0.0.1:18083"
# Two stages; the scripted watcher holds the second until it is cancelled.
HELD_IN_STAGE_2 = [
    {"name": "canary", "weight": 5, "bake": "PT1S"},
    {"name": "held", "weight": 25, "bake": "PT1H"},
]


# The new deployments' plan: handles got by id (not from a start) do not make the
# time-skipping server skip, so their bakes are short.
QUICK = [
    {"name": "canary", "weight": 10, "bake": "PT1S"},
    {"name": "pilot", "weight": 50, "bake": "PT1S"},
]


def worker(env: WorkflowEnvironment, task_queue: str, acts: ScriptedActivities) -> Worker:
    return build_worker(
        env.client, task_queue, activities=[*acts.activities(), *SUPERSEDE_ACTIVITIES]
    )


UNGUARDED = {"watch": "PT0S"}


def v3(service: str, **overrides: object) -> DeploymentSpec:
    overrides.setdefault("stages", QUICK)
    return unguarded(service, canary={"version": "v3", "address": V3}, **overrides)


def unguarded(service: str, **overrides: object) -> DeploymentSpec:
    """`make_spec` without the guard after 100%: these tests hold heartbeating activities,
    which stop the test server from skipping the guard's half hour."""
    return make_spec(service, **{"post_promotion": UNGUARDED, **overrides})


async def status_of(client: Client, service: str) -> DeploymentStatus:
    return await query_status(handle_for(client, f"deploy-{service}"))


async def until(client: Client, service: str, holds: Callable[[DeploymentStatus], bool]) -> None:
    async def check() -> bool:
        return holds(await status_of(client, service))

    await eventually(check, f"the deployment of {service} got there")


async def test_supersede_during_stage_2_rolls_back_then_starts_the_new_one(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    acts = ScriptedActivities(hold_in_stage="held")
    async with worker(time_skipping_env, task_queue, acts):
        old = await start_deployment(client, unguarded(service, stages=HELD_IN_STAGE_2), task_queue)
        await eventually(lambda: "held" in acts.watched, "stage 2's watcher runs")
        await until(client, service, lambda s: s.stage == "held" and s.canary_weight == 25)

        handle = await supersede_deployment(
            client, v3(service), task_queue, SupersedeInput(by="alice")
        )
        assert handle.id == supersede_id_for(service)
        result = await superseded(handle)

        old_result = await old.result()
        new_result = await handle_for(client, f"deploy-{service}", result.run_id).result()

    assert old_result.outcome == "rolled_back"
    assert old_result.reason == "aborted by alice: superseded by v3"
    assert [(c.action, c.by) for c in old_result.controls] == [("abort", "alice")]
    assert result.superseded is not None and result.abort_sent
    assert result.superseded.run_id == old.result_run_id
    assert (result.superseded.status, result.superseded.outcome) == ("completed", "rolled_back")
    assert result.superseded.reason is not None and "superseded by v3" in result.superseded.reason
    assert (result.canary_version, result.by) == ("v3", "alice")
    assert result.run_id != old.result_run_id

    # The new deployment backed up the routing the rollback had restored, then ran it all.
    assert new_result.outcome == "promoted" and new_result.canary_version == "v3"
    second_backup = [i for i, call in enumerate(acts.calls) if call == BACKUP][1]
    assert acts.calls.index(ROLLBACK) < second_backup
    first_new_shift = acts.applied[2]
    assert first_new_shift.stable_endpoints == (STABLE,)
    assert first_new_shift.canary_endpoints == (V3,)
    assert acts.weights == [5, 25, 10, 50, 100, 100, 0]
    assert acts.state.stable_endpoints == (V3,)


async def test_with_nothing_running_it_just_starts_the_new_one(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """As `temporal workflow start --type SupersedeDeployment --input-file spec.json` sends
    it: the spec alone, as JSON; the abort would be by `unknown`."""
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    acts = ScriptedActivities()
    async with worker(time_skipping_env, task_queue, acts):
        handle = await client.start_workflow(
            SUPERSEDE_DEPLOYMENT,
            v3(service).model_dump(mode="json"),
            id=supersede_id_for(service),
            task_queue=task_queue,
        )
        result = await superseded(
            client.get_workflow_handle(handle.id, result_type=SupersedeResult)
        )
        new_result = await handle_for(client, f"deploy-{service}", result.run_id).result()
    assert result.superseded is None and not result.abort_sent
    assert result.by == "unknown"
    assert new_result.outcome == "promoted"
    assert acts.rollbacks == 0


async def test_a_second_supersede_or_a_plain_deploy_is_refused_while_one_is_under_way(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """No worker yet: the first supersede is under way but cannot move."""
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    request = SupersedeInput(by="alice")
    first = await supersede_deployment(client, v3(service), task_queue, request)
    v4 = unguarded(service, canary={"version": "v4", "address": "127.0.0.1:18084"}, stages=QUICK)
    with pytest.raises(DeploymentAlreadyRunning) as second:
        await supersede_deployment(client, v4, task_queue, SupersedeInput(by="bob"))
    assert f"a supersede of {service} to v3 is already under way" in str(second.value)
    with pytest.raises(DeploymentAlreadyRunning, match=f"a supersede of {service} to v3"):
        await start_deployment(client, v4, task_queue)
    with pytest.raises(DeploymentAlreadyRunning, match=f"a supersede of {service} to v3"):
        await start_restore(client, task_queue, restore_input(service))

    acts = ScriptedActivities()
    async with worker(time_skipping_env, task_queue, acts):
        result = await superseded(first)
        new = await handle_for(client, f"deploy-{service}", result.run_id).result()
    assert (result.canary_version, new.canary_version, new.outcome) == ("v3", "v3", "promoted")


async def test_a_supersede_during_a_rollback_waits_for_it(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The old deployment breached and its rollback fails for two rounds: the abort is
    refused ("rolling back"), the supersede waits until the rollback is done."""
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    acts = ScriptedActivities(breach_in_stage="canary", rollback_failures=10)  # both plans
    async with worker(time_skipping_env, task_queue, acts):
        old = await start_deployment(client, unguarded(service, stages=QUICK), task_queue)
        await until(client, service, lambda s: s.phase in ("rolling_back", "failed"))
        handle = await supersede_deployment(
            client, v3(service), task_queue, SupersedeInput(by="alice", reason="hotfix")
        )
        with pytest.raises(DeploymentAlreadyRunning, match="to v3 is already under way"):
            await supersede_deployment(client, v3(service), task_queue, SupersedeInput())
        result = await superseded(handle)
        old_result = await old.result()
        new_result = await handle_for(client, f"deploy-{service}", result.run_id).result()

    assert old_result.outcome == "rolled_back"
    assert "superseded" not in old_result.reason  # the breach's rollback, not an abort
    assert old_result.controls == ()  # the abort was refused: it was rolling back
    assert result.superseded is not None and result.superseded.outcome == "rolled_back"
    # The old rollback's eleventh attempt restored the backup before the new one's backup.
    rollbacks = [i for i, call in enumerate(acts.calls) if call == ROLLBACK]
    second_backup = [i for i, call in enumerate(acts.calls) if call == BACKUP][1]
    assert len(rollbacks) == 12 and rollbacks[10] < second_backup < rollbacks[11]
    assert new_result.outcome == "rolled_back"  # the same scripted breach in stage canary
    assert acts.state.canary_endpoints == (OLD_CANARY,)


async def test_a_supersede_of_a_promoted_service_starts_from_the_promoted_state(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The old deployment had promoted before the supersede found it: nothing to abort,
    and the new one starts from the promoted routing (its stable must be that version)."""
    client = time_skipping_env.client
    service = f"svc-{task_queue}"
    acts = ScriptedActivities()
    async with worker(time_skipping_env, task_queue, acts):
        old = await start_deployment(client, unguarded(service, stages=QUICK), task_queue)
        assert (await old.result()).outcome == "promoted"
        spec = v3(service, stable={"version": "v2", "address": "127.0.0.1:18081"})
        result = await superseded(
            await supersede_deployment(client, spec, task_queue, SupersedeInput())
        )
        new_result: DeploymentResult = await handle_for(
            client, f"deploy-{service}", result.run_id
        ).result()
    assert result.superseded is None
    assert new_result.outcome == "promoted"
    assert acts.applied[5].stable_endpoints == ("127.0.0.1:18081",)


async def test_an_invalid_spec_fails_the_supersede_naming_the_field(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    raw = v3(f"svc-{task_queue}").model_dump(mode="json")
    raw["analysis"]["intervall"] = raw["analysis"].pop("interval")
    async with worker(time_skipping_env, task_queue, ScriptedActivities()):
        handle = await client.start_workflow(
            SUPERSEDE_DEPLOYMENT,
            args=[raw, {"by": "alice", "reasn": "typo"}],
            id=f"supersede-svc-{task_queue}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    message = str(failed.value.cause)
    assert "analysis.intervall" in message and "reasn" in message
