"""NginxRouterClient against a real nginx (Debian nginx-light) and real upstreams."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from activities.routers import router_for
from activities.routers.nginx import (
    NginxRouterClient,
    parse_upstream,
    render_upstream,
    workers_of,
)
from deploy.nginx import INSTALL_HINT, nginx_binary
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import NginxRouter
from tests.waiting import eventually

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream
    from tests.nginx_fixtures import NginxStack

pytest_plugins = ["tests.nginx_fixtures"]

requires_nginx = pytest.mark.skipif(
    nginx_binary() is None, reason=f"nginx is not installed: {INSTALL_HINT}"
)


def router(stack: NginxStack, **overrides: str) -> NginxRouterClient:
    return NginxRouterClient(stack.spec(**overrides))


def state(weight: int, stable: Upstream, canary: Upstream) -> RouterState:
    return RouterState(
        canary_weight=weight, stable_endpoints=(stable.address,), canary_endpoints=(canary.address,)
    )


def active_workers(stack: NginxStack) -> frozenset[int]:
    assert stack.process is not None
    return workers_of(stack.process.pid).active


# The file format, without nginx.


@pytest.mark.parametrize(
    "desired",
    [
        RouterState(canary_weight=0, stable_endpoints=("10.0.0.1:80",), canary_endpoints=()),
        RouterState(
            canary_weight=5, stable_endpoints=("10.0.0.1:80",), canary_endpoints=("b.local:81",)
        ),
        RouterState(
            canary_weight=25,
            stable_endpoints=("10.0.0.1:80", "10.0.0.2:80"),
            canary_endpoints=("[::1]:81",),
        ),
        RouterState(
            canary_weight=100, stable_endpoints=("10.0.0.1:80",), canary_endpoints=("10.0.0.9:80",)
        ),
    ],
)
def test_the_upstream_file_reads_back_as_written(desired: RouterState) -> None:
    assert parse_upstream(render_upstream("svc", desired), "svc", "f") == desired


def test_weight_zero_is_written_as_down_because_nginx_refuses_weight_0() -> None:
    text = render_upstream(
        "svc",
        RouterState(
            canary_weight=0, stable_endpoints=("10.0.0.1:80",), canary_endpoints=("10.0.0.2:80",)
        ),
    )
    assert "server 10.0.0.1:80 weight=1 max_fails=0;  # stable" in text
    assert "server 10.0.0.2:80 down;  # canary" in text
    assert "weight=0" not in text


def test_arm_shares_hold_with_several_servers_per_arm() -> None:
    desired = RouterState(
        canary_weight=25,
        stable_endpoints=("10.0.0.1:80", "10.0.0.2:80"),
        canary_endpoints=("10.0.0.3:80",),
    )
    text = render_upstream("svc", desired)
    # 2 stable servers at 3 against 1 canary server at 2: 6 : 2 = 75% : 25%.
    assert text.count("weight=3 max_fails=0;  # stable") == 2
    assert "server 10.0.0.3:80 weight=2 max_fails=0;  # canary" in text


@pytest.mark.parametrize("n_stable", range(1, 11))
def test_every_percentage_reads_back_exactly_with_any_number_of_servers(n_stable: int) -> None:
    stable = tuple(f"10.0.1.{i}:80" for i in range(n_stable))
    for n_canary in range(1, 11):
        canary = tuple(f"10.0.2.{i}:80" for i in range(n_canary))
        for percent in range(101):
            desired = RouterState(
                canary_weight=percent, stable_endpoints=stable, canary_endpoints=canary
            )
            text = render_upstream("svc", desired)
            assert parse_upstream(text, "svc", "f") == desired
            assert "weight=0" not in text
            # Each arm is split evenly: one weight (or `down`) for all its servers.
            for arm in ("stable", "canary"):
                params = {line.split()[2] for line in text.splitlines() if f"# {arm}" in line}
                assert len(params) == 1, text


def test_a_hand_edited_upstream_reads_as_its_weights() -> None:
    text = "upstream svc {\n  server 10.0.0.1:80 weight=1;  # stable\n  server x:1;  # canary\n}\n"
    assert parse_upstream(text, "svc", "f").canary_weight == 50  # no weight = nginx's 1


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("server 10.0.0.1:80 weight=1;  # stable\n keepalive 8;", "keepalive"),
        ("server 10.0.0.1:80 weight=1;  # stable\n server 10.0.0.2:80;", "10.0.0.2"),
        ("server 10.0.0.1:80 backup;  # stable", "backup"),
        ("server 10.0.0.1:80 weight=lots;  # stable", "weight=lots"),
        ("server 10.0.0.1:80 down;  # stable", "every server is down"),
    ],
)
def test_what_sluicegate_would_not_write_is_refused(body: str, complaint: str) -> None:
    with pytest.raises(RouterMisconfigured, match=complaint):
        parse_upstream(f"upstream svc {{\n {body}\n}}\n", "svc", "f")
    with pytest.raises(RouterMisconfigured, match="no `upstream other"):
        parse_upstream(f"upstream svc {{\n {body}\n}}\n", "other", "f")


# Against a real nginx.


async def test_read_state_of_a_fresh_nginx(nginx: NginxStack, upstreams: dict[str, Upstream]):
    assert await router(nginx).read_state() == state(0, upstreams["stable"], upstreams["canary"])
    assert await nginx.send(20) == {"200 stable": 20}  # `down` really gets nothing


async def test_apply_25_percent_sends_a_quarter_to_the_canary(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    before = active_workers(nginx)
    desired = state(25, upstreams["stable"], upstreams["canary"])
    assert await router(nginx).apply(desired) == desired
    assert await router(nginx).read_state() == desired
    # apply returned only once the workers taking connections were the reload's own.
    assert active_workers(nginx) and not active_workers(nginx) & before

    answers = await nginx.send(400)
    assert answers["200 stable"] + answers["200 canary"] == 400
    assert 60 <= answers["200 canary"] <= 140, answers  # 15-35% of 400: ±4.6 sd


async def test_apply_moves_the_canary_to_another_endpoint(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    desired = state(50, upstreams["stable"], upstreams["other"])
    assert await router(nginx).apply(desired) == desired

    answers = await nginx.send(100)
    assert answers["200 canary"] == 0
    assert answers["200 other"] > 20, answers
    assert answers["200 stable"] + answers["200 other"] == 100


async def test_apply_is_idempotent(nginx: NginxStack, upstreams: dict[str, Upstream]):
    desired = state(30, upstreams["stable"], upstreams["other"])
    first = await router(nginx).apply(desired)
    written = nginx.upstream_file.stat().st_mtime_ns
    workers = active_workers(nginx)

    assert await router(nginx).apply(desired) == first == desired
    assert nginx.upstream_file.stat().st_mtime_ns == written  # not rewritten
    assert active_workers(nginx) == workers  # and not reloaded


async def test_restore_puts_weight_and_endpoints_back(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    client = router(nginx)
    backup = await client.read_state()
    await client.apply(state(75, upstreams["other"], upstreams["canary"]))
    assert (nginx.upstream_file.parent / "upstream.conf.previous").read_text() == render_upstream(
        nginx.upstream, backup
    )

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await client.read_state() == state(0, upstreams["stable"], upstreams["canary"])
    assert await nginx.send(50) == {"200 stable": 50}


async def test_promotion_can_name_one_address_in_both_arms(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    # Promotion points stable at the canary while the canary carries 100%, then goes to 0%.
    client = router(nginx)
    for weight in (100, 0):
        desired = state(weight, upstreams["canary"], upstreams["canary"])
        assert await client.apply(desired) == desired
        assert await nginx.send(20) == {"200 canary": 20}


async def test_drift_an_edit_and_reload_behind_our_back_is_seen(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    client = router(nginx)
    expected = await client.apply(state(10, upstreams["stable"], upstreams["canary"]))
    stable, canary = upstreams["stable"].address, upstreams["canary"].address
    nginx.upstream_file.write_text(
        f"upstream {nginx.upstream} {{\n"
        f"    server {stable} down;  # stable\n"
        f"    server {canary} weight=7;  # canary, turned up by hand\n"
        "}\n"
    )
    nginx.reload()

    assert await client.read_state() == state(100, upstreams["stable"], upstreams["canary"])
    await eventually(
        lambda: _all_canary(nginx), "the hand-made reload sends everything to the canary"
    )

    assert await client.apply(expected) == expected  # the watcher's re-apply
    assert (await nginx.send(40))["200 stable"] > 0


async def _all_canary(nginx: NginxStack) -> bool:
    return await nginx.send(5) == {"200 canary": 5}


async def test_an_edit_without_a_reload_is_not_taken_for_live(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    desired = state(100, upstreams["stable"], upstreams["canary"])
    nginx.upstream_file.write_text(render_upstream(nginx.upstream, desired))  # no reload
    assert await nginx.send(10) == {"200 stable": 10}  # nginx still runs the old file

    # The file already says `desired`, but nginx never loaded it: apply must reload.
    assert await router(nginx).apply(desired) == desired
    assert await nginx.send(10) == {"200 canary": 10}


async def test_a_config_nginx_refuses_keeps_the_previous_file_and_nginx_serving(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    client = router(nginx)
    before_text = nginx.upstream_file.read_text()
    workers = active_workers(nginx)
    # Someone broke the main config; no upstream file can pass `nginx -t` now.
    main = nginx.main_config.read_text()
    nginx.main_config.write_text(main.replace("access_log off;", "access_log off;\n    bogus on;"))

    with pytest.raises(RouterMisconfigured, match='unknown directive "bogus"'):
        await client.apply(state(50, upstreams["stable"], upstreams["canary"]))

    assert nginx.upstream_file.read_text() == before_text
    assert active_workers(nginx) == workers  # no reload was attempted
    assert await nginx.send(20) == {"200 stable": 20}
    assert await client.read_state() == state(0, upstreams["stable"], upstreams["canary"])


async def test_an_upstream_file_nginx_does_not_include_is_misconfigured(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    elsewhere = nginx.upstream_file.with_name("elsewhere.conf")
    elsewhere.write_text(nginx.upstream_file.read_text())
    client = router(nginx, upstream_file=str(elsewhere))
    before = elsewhere.read_text()

    with pytest.raises(RouterMisconfigured, match="does not include"):
        await client.apply(state(50, upstreams["stable"], upstreams["canary"]))
    assert elsewhere.read_text() == before


async def test_an_upstream_file_the_worker_cannot_write_is_misconfigured(
    nginx: NginxStack, upstreams: dict[str, Upstream], tmp_path
):
    client = router(nginx, upstream_file=str(tmp_path / "no-such-dir" / "upstream.conf"))
    with pytest.raises(RouterMisconfigured, match=r"cannot write .*no-such-dir"):
        await client.apply(state(50, upstreams["stable"], upstreams["canary"]))
    assert await nginx.send(10) == {"200 stable": 10}


async def test_stopped_nginx_is_router_unavailable(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    before = nginx.upstream_file.read_text()
    nginx.stop()

    with pytest.raises(RouterUnavailable, match="nginx is not running"):
        await router(nginx).read_state()
    with pytest.raises(RouterUnavailable, match="nginx is not running"):
        await router(nginx).apply(state(50, upstreams["stable"], upstreams["canary"]))
    assert nginx.upstream_file.read_text() == before


async def test_a_killed_nginx_with_a_stale_pid_file_is_router_unavailable(nginx: NginxStack):
    assert nginx.process is not None
    pid_file = nginx.directory / "nginx.pid"
    nginx.process.kill()  # SIGKILL: the pid file stays behind
    assert pid_file.exists()
    with pytest.raises(RouterUnavailable, match="not an nginx master"):
        await router(nginx).read_state()


async def test_endpoints_nginx_cannot_use_are_refused_before_anything_changes(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    client = router(nginx)
    before = nginx.upstream_file.read_text()
    for endpoint in ("127.0.0.1:0", "127.0.0.1:99999", "bad host:80", "x:80; server evil:80"):
        desired = RouterState(
            canary_weight=10,
            stable_endpoints=(upstreams["stable"].address,),
            canary_endpoints=(endpoint,),
        )
        with pytest.raises(SpecError, match="host:port"):
            await client.apply(desired)
    with pytest.raises(SpecError, match="no endpoints"):
        await client.apply(RouterState(canary_weight=10, stable_endpoints=(), canary_endpoints=()))
    assert nginx.upstream_file.read_text() == before


async def test_a_missing_nginx_binary_is_misconfigured(
    nginx: NginxStack, upstreams: dict[str, Upstream]
):
    client = router(nginx, nginx_binary="/nonexistent/nginx")
    with pytest.raises(RouterMisconfigured, match="'/nonexistent/nginx' not found"):
        await client.apply(state(50, upstreams["stable"], upstreams["canary"]))


@requires_nginx
async def test_without_a_pid_directive_the_compiled_in_pid_file_is_used(tmp_path):
    main = tmp_path / "nginx.conf"
    main.write_text("events {}\n")
    build = subprocess.run(
        [nginx_binary() or "nginx", "-V"], capture_output=True, text=True, check=True
    ).stderr
    default = re.search(r"--pid-path=(\S+)", build)
    assert default is not None, build
    client = NginxRouterClient(
        NginxRouter(upstream_file=str(tmp_path / "u.conf"), upstream="u", main_config=str(main))
    )
    assert await client._pid_path() == Path(default.group(1))


def test_registry_builds_the_nginx_router(tmp_path):
    spec = NginxRouter(
        upstream_file=str(tmp_path / "u.conf"), upstream="svc", main_config="/etc/nginx/nginx.conf"
    )
    assert isinstance(router_for(spec), NginxRouterClient)


# Several endpoints per arm, against a real nginx.


def fleet_state(weight: int, stable: Sequence[Upstream], canary: Sequence[Upstream]) -> RouterState:
    return RouterState(
        canary_weight=weight,
        stable_endpoints=tuple(u.address for u in stable),
        canary_endpoints=tuple(u.address for u in canary),
    )


def served(answers: dict[str, int], upstreams: Sequence[Upstream]) -> list[int]:
    return [answers.get(f"200 {u.name}", 0) for u in upstreams]


async def test_three_endpoints_per_version_through_apply_read_and_restore(
    nginx: NginxStack, upstreams: dict[str, Upstream], fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(nginx)
    backup = await client.read_state()
    desired = fleet_state(25, fleets["stable"], fleets["canary"])

    assert await client.apply(desired) == desired
    assert await client.read_state() == desired
    answers = await nginx.send(600)
    assert sum(served(answers, fleets["stable"]) + served(answers, fleets["canary"])) == 600
    assert 90 <= sum(served(answers, fleets["canary"])) <= 210, answers  # 25% of 600: ±5 sd
    assert all(n > 0 for n in served(answers, fleets["canary"])), answers
    assert all(n > 0 for n in served(answers, fleets["stable"])), answers

    assert await client.restore(backup) == backup
    assert await client.restore(backup) == backup  # twice = once
    assert await nginx.send(30) == {"200 stable": 30}


async def test_an_arm_shrinks_and_grows(nginx: NginxStack, fleets: dict[str, tuple[Upstream, ...]]):
    client = router(nginx)
    stable, canary = fleets["stable"], fleets["canary"]
    await client.apply(fleet_state(50, stable, canary))

    shrunk = fleet_state(50, stable[:1], canary[:1])
    assert await client.apply(shrunk) == shrunk
    answers = await nginx.send(100)
    assert served(answers, stable)[1:] == served(answers, canary)[1:] == [0, 0], answers
    assert answers["200 stable-1"] + answers["200 canary-1"] == 100, answers

    grown = fleet_state(50, stable[:2], canary)
    assert await client.apply(grown) == grown
    answers = await nginx.send(200)
    assert all(n > 0 for n in served(answers, canary)), answers
    assert served(answers, stable)[2] == 0 and all(served(answers, stable)[:2]), answers


async def test_an_uneven_fleet_reads_back_the_exact_percentage(
    nginx: NginxStack, fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(nginx)
    stable, canary = fleets["stable"][:1], fleets["canary"]
    for percent in (1, 33, 99):
        desired = fleet_state(percent, stable, canary)
        assert await client.apply(desired) == desired
        assert (await client.read_state()).canary_weight == percent
    # 99% to 3 canaries against 1 stable: stable 1, each canary 33 (1 : 99).
    text = nginx.upstream_file.read_text()
    assert f"server {stable[0].address} weight=1 max_fails=0;  # stable" in text
    assert text.count("weight=33 max_fails=0;  # canary") == 3


async def test_the_same_fleets_in_another_order_change_nothing(
    nginx: NginxStack, fleets: dict[str, tuple[Upstream, ...]]
):
    client = router(nginx)
    await client.apply(fleet_state(10, fleets["stable"], fleets["canary"]))
    written = nginx.upstream_file.stat().st_mtime_ns
    workers = active_workers(nginx)

    reordered = fleet_state(10, fleets["stable"][::-1], fleets["canary"][::-1])
    assert (await client.apply(reordered)).matches(reordered)
    assert nginx.upstream_file.stat().st_mtime_ns == written  # not rewritten
    assert active_workers(nginx) == workers  # and not reloaded
