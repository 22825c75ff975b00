"""HAProxyRouterClient against a real HAProxy and real upstreams."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deployment import backup
from activities.routers import router_for
from activities.routers.haproxy import (
    ARMS,
    MAX_WEIGHT,
    Arm,
    HAProxyRouterClient,
    RuntimeApi,
    Slot,
    Step,
    arm_state,
    canary_percent,
    plan,
    slot_weights,
)
from deploy.haproxy import BACKEND
from deploy.processes import free_port
from sluicegate.contracts import BackupInput, RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import BackupSpec, HAProxyRouter

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream
    from tests.haproxy_fixtures import HAProxyStack

pytest_plugins = ["tests.haproxy_fixtures"]


def router(
    stack: HAProxyStack, runtime_api: str | None = None, **overrides: str
) -> HAProxyRouterClient:
    return HAProxyRouterClient(stack.router_spec(runtime_api, **overrides))


def state(weight: int, stable: Upstream, canary: Upstream) -> RouterState:
    return RouterState(
        canary_weight=weight, stable_endpoints=(stable.address,), canary_endpoints=(canary.address,)
    )


def record_commands(client: HAProxyRouterClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every runtime API command `client` sends from now on, in order."""
    sent: list[str] = []
    original = client.api.command

    async def command(line: str) -> str:
        sent.append(line)
        return await original(line)

    monkeypatch.setattr(client.api, "command", command)
    return sent


def changes(sent: list[str]) -> list[str]:
    return [line for line in sent if line.startswith("set ")]


async def weights(stack: HAProxyStack) -> tuple[str, str]:
    return (
        await stack.admin(f"get weight {BACKEND}/stable"),
        await stack.admin(f"get weight {BACKEND}/canary"),
    )


async def test_read_state_of_a_fresh_haproxy(haproxy: HAProxyStack, upstreams: dict[str, Upstream]):
    assert await router(haproxy).read_state() == state(0, upstreams["stable"], upstreams["canary"])


async def test_apply_25_percent_sends_a_quarter_to_the_canary(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    desired = state(25, upstreams["stable"], upstreams["canary"])
    assert await router(haproxy).apply(desired) == desired
    assert await router(haproxy).read_state() == desired
    assert await weights(haproxy) == ("75 (initial 100)", "25 (initial 0)")

    answers = await haproxy.send(400)
    assert answers["200 stable"] + answers["200 canary"] == 400, answers
    # Binomial(400, 0.25): mean 100, sd 8.7; 60-140 is beyond 4.5 sd either way.
    assert 60 <= answers["200 canary"] <= 140, answers


async def test_apply_moves_the_canary_to_another_endpoint(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    desired = state(50, upstreams["stable"], upstreams["other"])
    assert await router(haproxy).apply(desired) == desired

    answers = await haproxy.send(100)
    assert answers["200 canary"] == 0, answers
    assert answers["200 other"] > 20, answers
    assert answers["200 stable"] + answers["200 other"] == 100, answers


async def test_apply_is_idempotent(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream], monkeypatch: pytest.MonkeyPatch
):
    desired = state(30, upstreams["stable"], upstreams["other"])
    client = router(haproxy)
    first = await client.apply(desired)
    sent = record_commands(client, monkeypatch)

    assert await client.apply(desired) == first == desired
    assert sent and changes(sent) == []  # read, compared, nothing changed the second time


async def test_lowering_the_canary_happens_before_its_address_changes(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream], monkeypatch: pytest.MonkeyPatch
):
    client = router(haproxy)
    await client.apply(state(40, upstreams["stable"], upstreams["canary"]))
    sent = record_commands(client, monkeypatch)

    await client.apply(state(10, upstreams["stable"], upstreams["other"]))

    host, _, port = upstreams["other"].address.rpartition(":")
    assert changes(sent) == [
        f"set weight {BACKEND}/stable 90",  # stable up first: never both at 0
        f"set weight {BACKEND}/canary 10",
        f"set server {BACKEND}/canary addr {host} port {port}",
    ]


async def test_raising_the_canary_happens_after_its_address_changes(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream], monkeypatch: pytest.MonkeyPatch
):
    client = router(haproxy)
    sent = record_commands(client, monkeypatch)

    await client.apply(state(100, upstreams["stable"], upstreams["other"]))

    host, _, port = upstreams["other"].address.rpartition(":")
    assert changes(sent) == [
        f"set server {BACKEND}/canary addr {host} port {port}",
        f"set weight {BACKEND}/canary 100",  # canary up before stable down
        f"set weight {BACKEND}/stable 0",
    ]
    assert await haproxy.send(20) == {"200 other": 20}


async def test_promotion_steps_keep_serving(haproxy: HAProxyStack, upstreams: dict[str, Upstream]):
    """The workflow's promotion: 100% canary, point stable at it, then 0% canary."""
    client, stable, canary = router(haproxy), upstreams["stable"], upstreams["other"]
    for step in (state(100, stable, canary), state(100, canary, canary), state(0, canary, canary)):
        assert await client.apply(step) == step
        assert await haproxy.send(10) == {"200 other": 10}


async def test_restore_puts_weights_and_endpoints_back(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy)
    backup = await client.read_state()
    await client.apply(state(75, upstreams["other"], upstreams["canary"]))

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await weights(haproxy) == ("100 (initial 100)", "0 (initial 0)")
    assert await haproxy.send(50) == {"200 stable": 50}


async def test_a_weight_changed_behind_our_back_is_seen_and_reapplied(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy)
    desired = state(25, upstreams["stable"], upstreams["canary"])
    await client.apply(desired)

    assert await haproxy.admin(f"set weight {BACKEND}/canary 50") == ""
    drifted = await client.read_state()
    assert drifted.canary_weight == 40  # 50 / (75 + 50): the share HAProxy now sends
    assert not drifted.matches(desired)

    await haproxy.set_weights(0, 0)  # nobody gets traffic; reads as no canary traffic
    assert (await client.read_state()).canary_weight == 0

    assert await client.apply(desired) == desired
    assert await weights(haproxy) == ("75 (initial 100)", "25 (initial 0)")


async def test_an_address_changed_behind_our_back_is_seen(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    host, _, port = upstreams["other"].address.rpartition(":")
    answer = await haproxy.admin(f"set server {BACKEND}/stable addr {host} port {port}")
    assert "port changed" in answer, answer

    seen = await router(haproxy).read_state()
    assert seen == state(0, upstreams["other"], upstreams["canary"])


async def test_a_restart_reverts_to_the_config_file(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy)
    await client.apply(state(25, upstreams["stable"], upstreams["other"]))

    haproxy.restart()

    # Weights and addresses set through the runtime API live in memory only: HAProxy is
    # back to its config (0% canary, the original canary address), which reads as drift.
    assert await client.read_state() == state(0, upstreams["stable"], upstreams["canary"])


def test_shares_round_without_hiding_an_arm():
    assert canary_percent(75, 25) == 25
    assert canary_percent(256, 1) == 1  # 0.4% is still canary traffic
    assert canary_percent(1, 256) == 99
    assert canary_percent(0, 7) == 100
    assert canary_percent(0, 0) == 0


async def test_the_tcp_runtime_api_works_too(haproxy: HAProxyStack, upstreams: dict[str, Upstream]):
    client = router(haproxy, runtime_api=haproxy.tcp_runtime_api)
    desired = state(20, upstreams["stable"], upstreams["other"])
    assert await client.apply(desired) == desired
    assert await router(haproxy).read_state() == desired  # the unix socket agrees


async def test_unknown_backend_is_misconfigured(haproxy: HAProxyStack):
    with pytest.raises(RouterMisconfigured, match=r"show servers state blue.*Can't find backend"):
        await router(haproxy, backend="blue").read_state()


async def test_unknown_server_is_misconfigured(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy, canary_server="blue")
    with pytest.raises(RouterMisconfigured, match=rf"{BACKEND}.* has no server 'blue'"):
        await client.read_state()
    with pytest.raises(RouterMisconfigured, match="'blue'"):
        await client.apply(state(10, upstreams["stable"], upstreams["canary"]))
    assert await weights(haproxy) == ("100 (initial 100)", "0 (initial 0)")


async def test_a_refused_change_quotes_haproxy(
    start_haproxy: Callable[..., HAProxyStack], upstreams: dict[str, Upstream]
):
    static = start_haproxy(balance="static-rr")  # weights cannot change at run time
    with pytest.raises(RouterMisconfigured, match=rf"set weight {BACKEND}/.*static LB algorithm"):
        await router(static).apply(state(25, upstreams["stable"], upstreams["canary"]))


async def test_unreachable_runtime_api_is_unavailable(tmp_path: Path):
    for api in (str(tmp_path / "missing.sock"), f"127.0.0.1:{free_port()}"):
        client = HAProxyRouterClient(HAProxyRouter(runtime_api=api, backend=BACKEND))
        with pytest.raises(RouterUnavailable, match=api) as caught:
            await client.read_state()
        assert caught.value.retryable
        with pytest.raises(RouterUnavailable, match=api):
            await client.apply(
                RouterState(
                    canary_weight=5,
                    stable_endpoints=("127.0.0.1:1",),
                    canary_endpoints=("127.0.0.1:2",),
                )
            )


async def test_a_stopped_haproxy_is_unavailable(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy)
    await client.read_state()
    haproxy.stop()
    with pytest.raises(RouterUnavailable, match=str(haproxy.socket)):
        await client.apply(state(10, upstreams["stable"], upstreams["canary"]))
    with pytest.raises(RouterUnavailable, match=str(haproxy.socket)):
        await RuntimeApi(str(haproxy.socket)).command("show info")


async def test_bad_endpoints_are_refused_before_anything_changes(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    client = router(haproxy)
    before = await client.read_state()
    stable = (upstreams["stable"].address,)
    for canary, problem in (
        (("localhost:8080",), "localhost:8080"),
        ((upstreams["canary"].address, upstreams["canary"].address), "once per arm"),
        ((), "10% to canary, but it has no endpoints"),
    ):
        desired = RouterState(canary_weight=10, stable_endpoints=stable, canary_endpoints=canary)
        with pytest.raises(SpecError, match=problem):
            await client.apply(desired)
    assert await client.read_state() == before


def test_names_that_could_smuggle_commands_are_refused():
    with pytest.raises(SpecError, match=r"router\.backend"):
        HAProxyRouterClient(HAProxyRouter(runtime_api="/x.sock", backend="web;shutdown frontend x"))
    with pytest.raises(SpecError, match=r"router\.canary_server"):
        HAProxyRouterClient(
            HAProxyRouter(runtime_api="/x.sock", backend="web", canary_server="c\nset weight")
        )


def test_registry_builds_the_haproxy_router():
    spec = HAProxyRouter(runtime_api="/run/haproxy/admin.sock", backend="web")
    assert isinstance(router_for(spec), HAProxyRouterClient)


# Several endpoints per arm: server slots (stable1, stable2, ... from `server-template`).


def fleet_state(weight: int, stable: Sequence[Upstream], canary: Sequence[Upstream]) -> RouterState:
    return RouterState(
        canary_weight=weight,
        stable_endpoints=tuple(u.address for u in stable),
        canary_endpoints=tuple(u.address for u in canary),
    )


async def weight_of(stack: HAProxyStack, server: str) -> int:
    return int((await stack.admin(f"get weight {BACKEND}/{server}")).split()[0])


def served(answers: dict[str, int], upstreams: Sequence[Upstream]) -> list[int]:
    return [answers.get(f"200 {u.name}", 0) for u in upstreams]


@pytest.mark.parametrize("n_stable", range(1, 11))
def test_slot_weights_read_back_every_percent_or_say_why_not(n_stable: int):
    for n_canary in range(1, 11):
        for percent in range(101):
            try:
                stable, canary = slot_weights(percent, n_stable, n_canary)
            except ValueError as err:
                assert "nearest shares" in str(err)
                # Truly impossible: no pair of weights 1-256 reads back as `percent`.
                assert not any(
                    canary_percent(n_stable * s, n_canary * c) == percent
                    for c in range(1, MAX_WEIGHT + 1)
                    for s in range(1, MAX_WEIGHT + 1)
                ), (percent, n_stable, n_canary)
                continue
            assert 0 <= stable <= MAX_WEIGHT and 0 <= canary <= MAX_WEIGHT
            assert (stable > 0) == (percent < 100) and (canary > 0) == (percent > 0)
            assert canary_percent(n_stable * stable, n_canary * canary) == percent


def test_slot_weights_of_one_server_per_arm_are_the_percentages():
    for percent in range(101):
        assert slot_weights(percent, 1, 1) == (100 - percent, percent)
    assert slot_weights(25, 3, 3) == (75, 25)
    assert slot_weights(10, 1, 3) == (27, 1)  # 3 x 1 against 27: exactly 10%


def test_only_lopsided_fleets_at_the_edges_cannot_be_split_evenly():
    with pytest.raises(ValueError, match=r"1% to 4 canary.*nearest shares .* are 2%"):
        slot_weights(1, 1, 4)
    impossible = {
        (p, s, c)
        for p in range(101)
        for s in range(1, 11)
        for c in range(1, 11)
        if _impossible(p, s, c)
    }
    assert {p for p, _, _ in impossible} <= {1, 2, 3, 97, 98, 99}
    assert all(c >= 4 * s for p, s, c in impossible if p < 50)  # 4+ canaries per stable
    assert all(s >= 4 * c for p, s, c in impossible if p > 50)


def _impossible(percent: int, n_stable: int, n_canary: int) -> bool:
    try:
        slot_weights(percent, n_stable, n_canary)
    except ValueError:
        return True
    return False


def _share(slots: dict[Arm, list[Slot]]) -> tuple[Fraction | None, int]:
    """The canary's exact share (None when nobody gets traffic) and the total weight."""
    totals = {arm: sum(s.weight for s in slots[arm] if s.serves) for arm in ARMS}
    total = totals["stable"] + totals["canary"]
    return (Fraction(totals["canary"], total) if total else None), total


def _step(slots: dict[Arm, list[Slot]], step: Step) -> None:
    for arm in ARMS:
        for i, slot in enumerate(slots[arm]):
            if slot.name == step.server:
                slots[arm][i] = Slot(
                    name=slot.name,
                    endpoint=slot.endpoint if step.endpoint is None else step.endpoint,
                    ready=slot.ready if step.ready is None else step.ready,
                    weight=slot.weight if step.weight is None else step.weight,
                )


def _random_case(rng: random.Random) -> tuple[dict[Arm, list[Slot]], RouterState]:
    pool = [f"10.0.0.{i}:80" for i in range(1, 8)]
    slots: dict[Arm, list[Slot]] = {}
    for arm in ARMS:
        count = rng.randint(1, 5)
        slots[arm] = [
            Slot(
                name=f"{arm}{i}",
                endpoint=rng.choice(pool),
                ready=rng.random() < 0.6,
                weight=rng.choice([0, 0, 1, 7, 50, 100, 256]),
            )
            for i in range(1, count + 1)
        ]
    while True:
        percent = rng.choice([0, 0, 1, 5, 10, 25, 50, 90, 100, 100, rng.randint(0, 100)])
        stable = rng.sample(pool, rng.randint(0 if percent == 100 else 1, len(slots["stable"])))
        canary = rng.sample(pool, rng.randint(0 if percent == 0 else 1, len(slots["canary"])))
        if not _impossible(percent, len(stable), len(canary)):
            return slots, RouterState(
                canary_weight=percent,
                stable_endpoints=tuple(stable),
                canary_endpoints=tuple(canary),
            )


def test_every_plan_keeps_traffic_safe():
    """Random slots and targets: the plan ends at the target, the canary's share never
    exceeds the larger of the old and new shares, a slot only serves (with weight) an
    endpoint its arm has in the old or new state, and an HAProxy serving before and after
    never serves nobody between."""
    rng = random.Random(20261202)
    for _ in range(3000):
        slots, desired = _random_case(rng)
        before = arm_state(slots)
        old_share, old_total = _share(slots)
        allowed = {
            arm: {s.endpoint for s in slots[arm] if s.serves}
            | set(desired.stable_endpoints if arm == "stable" else desired.canary_endpoints)
            for arm in ARMS
        }
        steps = plan(slots, desired)
        states = []
        for step in steps:
            _step(slots, step)
            states.append({arm: list(slots[arm]) for arm in ARMS})
        assert arm_state(slots).matches(desired), (before, desired, steps)
        assert plan(slots, desired) == []  # and a second plan has nothing left to do
        new_share, new_total = _share(slots)
        assert len(
            {(step.server, step.weight is None, step.ready is None) for step in steps}
        ) == len(steps), steps  # each slot's weight, address and state change at most once
        for mid in states:
            share, total = _share(mid)
            if old_total and new_total:
                assert total > 0, (before, desired, steps)
            if share is not None:
                assert share <= max(old_share or 0, new_share or 0), (before, desired, steps)
            for arm in ARMS:
                for slot in mid[arm]:
                    if slot.serves and slot.weight:
                        assert slot.endpoint in allowed[arm], (before, desired, steps)


async def test_slots_in_maintenance_are_not_endpoints(
    start_haproxy: Callable[..., HAProxyStack], upstreams: dict[str, Upstream]
):
    haproxy = start_haproxy(slots=5)
    assert await router(haproxy).read_state() == state(0, upstreams["stable"], upstreams["canary"])
    assert await haproxy.send(20) == {"200 stable": 20}


async def test_three_endpoints_per_version_through_apply_read_and_restore(
    start_haproxy: Callable[..., HAProxyStack],
    fleets: dict[str, tuple[Upstream, ...]],
    monkeypatch: pytest.MonkeyPatch,
):
    haproxy = start_haproxy(slots=5)
    client = router(haproxy)
    backup = await client.read_state()
    desired = fleet_state(25, fleets["stable"], fleets["canary"])

    assert (await client.apply(desired)).matches(desired)
    assert (await client.read_state()).matches(desired)
    # 3 x 75 against 3 x 25; the two spare slots stay in maintenance.
    assert [await weight_of(haproxy, f"stable{i}") for i in range(1, 6)] == [75, 75, 75, 0, 0]
    assert [await weight_of(haproxy, f"canary{i}") for i in range(1, 6)] == [25, 25, 25, 0, 0]

    answers = await haproxy.send(600)
    assert sum(served(answers, fleets["stable"]) + served(answers, fleets["canary"])) == 600
    assert 90 <= sum(served(answers, fleets["canary"])) <= 210, answers  # 25% of 600: ±5 sd
    assert all(n > 0 for n in served(answers, fleets["canary"])), answers
    assert all(n > 0 for n in served(answers, fleets["stable"])), answers

    reordered = fleet_state(25, fleets["stable"][::-1], fleets["canary"][::-1])
    sent = record_commands(client, monkeypatch)
    assert (await client.apply(reordered)).matches(reordered)
    assert changes(sent) == []  # the same routing: nothing to change

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await haproxy.send(30) == {"200 stable": 30}
    assert await weight_of(haproxy, "stable1") == 100


@pytest.mark.parametrize(("n_stable", "n_canary"), [(3, 3), (1, 3), (3, 1), (2, 3)])
async def test_the_percentage_reads_back_exactly(
    start_haproxy: Callable[..., HAProxyStack],
    fleets: dict[str, tuple[Upstream, ...]],
    n_stable: int,
    n_canary: int,
):
    client = router(start_haproxy(slots=3))
    stable, canary = fleets["stable"][:n_stable], fleets["canary"][:n_canary]
    for percent in (0, 1, 3, 5, 10, 33, 50, 67, 90, 97, 99, 100):
        desired = fleet_state(percent, stable, canary)
        assert (await client.apply(desired)).matches(desired)
        assert (await client.read_state()).canary_weight == percent


async def test_an_arm_shrinks_and_grows(
    start_haproxy: Callable[..., HAProxyStack], fleets: dict[str, tuple[Upstream, ...]]
):
    haproxy = start_haproxy(slots=3)
    client = router(haproxy)
    stable, canary = fleets["stable"], fleets["canary"]
    await client.apply(fleet_state(50, stable, canary))

    shrunk = fleet_state(50, stable[:1], canary[:1])
    assert await client.apply(shrunk) == shrunk
    states = await haproxy.admin(f"show servers state {BACKEND}")
    for arm in ("stable", "canary"):
        for i in (2, 3):  # the slots given up wait in maintenance (admin state: forced)
            row = next(line.split() for line in states.splitlines() if f" {arm}{i} " in line)
            assert int(row[6]) & 0x01, row
    answers = await haproxy.send(100)
    assert served(answers, stable) == [answers["200 stable-1"], 0, 0], answers
    assert served(answers, canary) == [answers["200 canary-1"], 0, 0], answers
    assert answers["200 stable-1"] + answers["200 canary-1"] == 100

    grown = fleet_state(50, stable[:2], canary)
    assert (await client.apply(grown)).matches(grown)
    answers = await haproxy.send(200)
    assert all(n > 0 for n in served(answers, canary)), answers
    assert served(answers, stable)[2] == 0 and all(served(answers, stable)[:2]), answers


async def test_growing_the_canary_adds_slots_at_their_weight_before_they_serve(
    start_haproxy: Callable[..., HAProxyStack],
    fleets: dict[str, tuple[Upstream, ...]],
    monkeypatch: pytest.MonkeyPatch,
):
    client = router(start_haproxy(slots=3))
    stable, canary = fleets["stable"][:1], fleets["canary"]
    await client.apply(fleet_state(10, stable, canary[:1]))
    sent = record_commands(client, monkeypatch)

    await client.apply(fleet_state(10, stable, canary))

    hosts = [u.address.rpartition(":") for u in canary]
    # 10% was stable 90 : canary 10; it becomes 27 : 3 x 1. The canary's share first
    # falls (10 → 1: 1.1%), rises as each new slot joins (weight, address, then ready:
    # 2.2%, 3.2%) and reaches 10% only as stable comes down last.
    assert changes(sent) == [
        f"set weight {BACKEND}/canary1 1",
        f"set weight {BACKEND}/canary2 1",
        f"set server {BACKEND}/canary2 addr {hosts[1][0]} port {hosts[1][2]}",
        f"set server {BACKEND}/canary2 state ready",
        f"set weight {BACKEND}/canary3 1",
        f"set server {BACKEND}/canary3 addr {hosts[2][0]} port {hosts[2][2]}",
        f"set server {BACKEND}/canary3 state ready",
        f"set weight {BACKEND}/stable1 27",
    ]


async def test_a_replaced_endpoint_hands_its_slot_over_in_one_command(
    start_haproxy: Callable[..., HAProxyStack],
    fleets: dict[str, tuple[Upstream, ...]],
    monkeypatch: pytest.MonkeyPatch,
):
    client = router(start_haproxy(slots=3))
    stable, canary = fleets["stable"], fleets["canary"]
    await client.apply(fleet_state(20, stable, canary))
    sent = record_commands(client, monkeypatch)

    # stable-2 leaves and other-1 arrives: other-1 takes stable-2's slot, at its weight.
    await client.apply(fleet_state(20, (stable[0], fleets["other"][0], stable[2]), canary))

    host, _, port = fleets["other"][0].address.rpartition(":")
    assert changes(sent) == [f"set server {BACKEND}/stable2 addr {host} port {port}"]


async def test_too_few_slots_is_misconfigured_before_anything_changes(
    start_haproxy: Callable[..., HAProxyStack],
    haproxy: HAProxyStack,
    upstreams: dict[str, Upstream],
    fleets: dict[str, tuple[Upstream, ...]],
):
    desired = fleet_state(10, fleets["stable"][:1], fleets["canary"])
    one_server = router(haproxy)  # the old config: `server stable`, `server canary`
    with pytest.raises(
        RouterMisconfigured,
        match=r"has 1 canary slot\(s\) \(canary\) for 3 canary endpoints.*"
        r"`server-template canary 1-2 <IP:port> weight 0 disabled`",
    ):
        await one_server.apply(desired)
    assert await one_server.read_state() == state(0, upstreams["stable"], upstreams["canary"])

    two_slots = router(start_haproxy(slots=2))
    with pytest.raises(RouterMisconfigured, match=r"canary1, canary2\).*canary 3-3"):
        await two_slots.apply(desired)
    assert await two_slots.read_state() == state(0, upstreams["stable"], upstreams["canary"])


async def test_a_share_weights_cannot_split_evenly_is_refused_before_anything_changes(
    start_haproxy: Callable[..., HAProxyStack], fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(start_haproxy(slots=5))
    before = await client.read_state()
    desired = fleet_state(1, fleets["stable"][:1], (*fleets["canary"], fleets["other"][0]))
    with pytest.raises(SpecError, match="cannot give 1% to 4 canary"):
        await client.apply(desired)
    assert await client.read_state() == before


async def test_a_plan_with_a_share_weights_cannot_split_is_refused_at_the_backup(
    start_haproxy: Callable[..., HAProxyStack],
    fleets: dict[str, tuple[Upstream, ...]],
    tmp_path: Path,
):
    """The backup tries every stage's share against the router: a 1% stage HAProxy cannot
    give 4 canary servers against 1 stable is refused before any traffic moves, not
    rolled back when the deployment reaches it."""
    haproxy = start_haproxy(slots=5)
    before = await router(haproxy).read_state()
    canary = tuple(u.address for u in (*fleets["canary"], fleets["other"][0]))
    request = BackupInput(
        service="shop",
        deployment_id="run-1",
        router=haproxy.router_spec(),
        backup=BackupSpec(directory=str(tmp_path / "backups")),
        expected_stable=before.stable_endpoints,
        canary_endpoints=canary,
        weights=(1, 25, 50),
    )
    with pytest.raises(ApplicationError, match="cannot give 1% to 4 canary") as refused:
        await ActivityEnvironment().run(backup, request)
    assert refused.value.type == "SpecError" and refused.value.non_retryable
    assert not (tmp_path / "backups").exists(), "no backup written"
    assert await router(haproxy).read_state() == before

    fine = request.model_copy(update={"weights": (2, 25, 50)})
    record = await ActivityEnvironment().run(backup, fine)
    assert record.state == before


async def test_a_slot_put_in_maintenance_behind_our_back_is_seen_and_reapplied(
    start_haproxy: Callable[..., HAProxyStack], fleets: dict[str, tuple[Upstream, ...]]
):
    haproxy = start_haproxy(slots=3)
    client = router(haproxy)
    desired = fleet_state(30, fleets["stable"], fleets["canary"])
    await client.apply(desired)

    assert await haproxy.admin(f"set server {BACKEND}/canary2 state maint") == ""
    drifted = await client.read_state()
    assert sorted(drifted.canary_endpoints) == sorted(
        u.address for u in (fleets["canary"][0], fleets["canary"][2])
    )
    assert drifted.canary_weight == 22  # 2 x 30 against 3 x 70

    assert (await client.apply(desired)).matches(desired)


def test_server_names_whose_slots_overlap_are_refused():
    with pytest.raises(SpecError, match="would include the other's"):
        HAProxyRouterClient(
            HAProxyRouter(
                runtime_api="/x.sock", backend="web", stable_server="app", canary_server="app2"
            )
        )
