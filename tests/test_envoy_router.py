"""EnvoyRouterClient against a real Envoy and real upstreams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from activities.routers import router_for
from activities.routers.envoy import EnvoyRouterClient
from deploy.processes import free_port
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import EnvoyRouter

if TYPE_CHECKING:
    from tests.envoy_fixtures import EnvoyStack, Upstream

pytest_plugins = ["tests.envoy_fixtures"]


def router(stack: EnvoyStack, **overrides: str) -> EnvoyRouterClient:
    spec = EnvoyRouter(
        admin_url=stack.admin_url, endpoints_dir=str(stack.endpoints_dir), **overrides
    )
    return EnvoyRouterClient(spec)


def state(weight: int, stable: Upstream, canary: Upstream) -> RouterState:
    return RouterState(
        canary_weight=weight, stable_endpoints=(stable.address,), canary_endpoints=(canary.address,)
    )


async def test_read_state_of_a_fresh_envoy(envoy: EnvoyStack, upstreams: dict[str, Upstream]):
    assert await router(envoy).read_state() == state(0, upstreams["stable"], upstreams["canary"])


async def test_apply_25_percent_sends_a_quarter_to_the_canary(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    desired = state(25, upstreams["stable"], upstreams["canary"])
    assert await router(envoy).apply(desired) == desired
    assert await router(envoy).read_state() == desired

    answers = await envoy.send(400)
    assert answers["200 stable"] + answers["200 canary"] == 400
    assert 60 <= answers["200 canary"] <= 140, answers  # 15-35% of 400


async def test_apply_moves_the_canary_to_another_endpoint(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    desired = state(50, upstreams["stable"], upstreams["other"])
    assert await router(envoy).apply(desired) == desired

    answers = await envoy.send(100)
    assert answers["200 canary"] == 0
    assert answers["200 other"] > 20, answers
    assert answers["200 stable"] + answers["200 other"] == 100


async def test_apply_is_idempotent(envoy: EnvoyStack, upstreams: dict[str, Upstream]):
    desired = state(30, upstreams["stable"], upstreams["other"])
    eds_file = envoy.endpoints_dir / "canary.yaml"
    first = await router(envoy).apply(desired)
    written = eds_file.stat().st_mtime_ns
    assert await router(envoy).apply(desired) == first == desired
    assert eds_file.stat().st_mtime_ns == written  # nothing rewritten the second time


async def test_restore_puts_weight_and_endpoints_back(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    client = router(envoy)
    backup = await client.read_state()
    await client.apply(state(75, upstreams["other"], upstreams["canary"]))

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await client.read_state() == state(0, upstreams["stable"], upstreams["canary"])
    assert await envoy.send(50) == {"200 stable": 50}


async def test_restart_drops_the_weight_to_zero(envoy: EnvoyStack, upstreams: dict[str, Upstream]):
    desired = state(25, upstreams["stable"], upstreams["other"])
    await router(envoy).apply(desired)

    envoy.restart()

    # The admin runtime layer is gone (drift to 0%); the EDS files kept the endpoints.
    assert await router(envoy).read_state() == state(0, upstreams["stable"], upstreams["other"])


async def test_unreachable_admin_is_router_unavailable(tmp_path):
    admin_url = f"http://127.0.0.1:{free_port()}"
    client = EnvoyRouterClient(EnvoyRouter(admin_url=admin_url, endpoints_dir=str(tmp_path)))
    with pytest.raises(RouterUnavailable, match=admin_url):
        await client.read_state()
    with pytest.raises(RouterUnavailable, match=admin_url):
        await client.apply(RouterState(canary_weight=5, stable_endpoints=(), canary_endpoints=()))


async def test_missing_cluster_is_misconfigured(envoy: EnvoyStack):
    with pytest.raises(RouterMisconfigured, match="'blue'"):
        await router(envoy, canary_cluster="blue").read_state()


async def test_host_names_are_refused_before_anything_changes(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    client = router(envoy)
    before = await client.read_state()
    desired = RouterState(
        canary_weight=10,
        stable_endpoints=(upstreams["stable"].address,),
        canary_endpoints=("localhost:8080",),
    )
    with pytest.raises(SpecError, match="localhost:8080"):
        await client.apply(desired)
    assert await client.read_state() == before


async def test_an_unwatched_endpoints_dir_times_out_as_unavailable(
    envoy: EnvoyStack, upstreams: dict[str, Upstream], tmp_path, monkeypatch
):
    monkeypatch.setattr("activities.routers.envoy.EDS_PICKUP_TIMEOUT", 0.5)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    client = EnvoyRouterClient(EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(elsewhere)))
    with pytest.raises(RouterUnavailable, match="did not load"):
        await client.apply(state(0, upstreams["stable"], upstreams["other"]))


def test_registry_builds_the_envoy_router(tmp_path):
    spec = EnvoyRouter(admin_url="http://127.0.0.1:9901", endpoints_dir=str(tmp_path))
    assert isinstance(router_for(spec), EnvoyRouterClient)


# Several endpoints per arm: EDS files list them all.


def fleet_state(weight: int, stable: Sequence[Upstream], canary: Sequence[Upstream]) -> RouterState:
    return RouterState(
        canary_weight=weight,
        stable_endpoints=tuple(u.address for u in stable),
        canary_endpoints=tuple(u.address for u in canary),
    )


def served(answers: dict[str, int], upstreams: Sequence[Upstream]) -> list[int]:
    return [answers.get(f"200 {u.name}", 0) for u in upstreams]


async def test_three_endpoints_per_version_through_apply_read_and_restore(
    envoy: EnvoyStack, fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(envoy)
    backup = await client.read_state()
    desired = fleet_state(25, fleets["stable"], fleets["canary"])

    assert (await client.apply(desired)).matches(desired)
    assert (await client.read_state()).matches(desired)
    assert (await client.read_state()).canary_weight == 25
    answers = await envoy.send(600)
    assert sum(served(answers, fleets["stable"]) + served(answers, fleets["canary"])) == 600
    assert 90 <= sum(served(answers, fleets["canary"])) <= 210, answers  # 25% of 600: ±5 sd
    assert all(n > 0 for n in served(answers, fleets["canary"])), answers
    assert all(n > 0 for n in served(answers, fleets["stable"])), answers

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await envoy.send(30) == {"200 stable": 30}


async def test_an_arm_shrinks_and_grows(envoy: EnvoyStack, fleets: dict[str, tuple[Upstream, ...]]):
    client = router(envoy)
    stable, canary = fleets["stable"], fleets["canary"]
    await client.apply(fleet_state(50, stable, canary))

    shrunk = fleet_state(50, stable[:1], canary[:1])
    assert await client.apply(shrunk) == shrunk
    answers = await envoy.send(100)
    assert served(answers, stable)[1:] == served(answers, canary)[1:] == [0, 0], answers
    assert answers["200 stable-1"] + answers["200 canary-1"] == 100, answers

    grown = fleet_state(50, stable[:2], canary)
    assert (await client.apply(grown)).matches(grown)
    answers = await envoy.send(200)
    assert all(n > 0 for n in served(answers, canary)), answers
    assert served(answers, stable)[2] == 0 and all(served(answers, stable)[:2]), answers


async def test_the_same_fleets_in_another_order_change_nothing(
    envoy: EnvoyStack, fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(envoy)
    await client.apply(fleet_state(10, fleets["stable"], fleets["canary"]))
    files = [envoy.endpoints_dir / f"{arm}.yaml" for arm in ("stable", "canary")]
    written = [path.stat().st_mtime_ns for path in files]

    reordered = fleet_state(10, fleets["stable"][::-1], fleets["canary"][::-1])
    assert (await client.apply(reordered)).matches(reordered)
    assert [path.stat().st_mtime_ns for path in files] == written  # nothing rewritten
