"""HAProxyRouterClient against a real HAProxy and real upstreams."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from activities.routers import router_for
from activities.routers.haproxy import HAProxyRouterClient, RuntimeApi, canary_percent
from deploy.haproxy import BACKEND
from deploy.processes import free_port
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import HAProxyRouter

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
        ((upstreams["canary"].address, upstreams["other"].address), "exactly one"),
        ((), "exactly one"),
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
