"""Every registered router and metric source keeps the interface's promises.

Parametrised over the registries: a new router or metric source must add a harness here
(how to build one against its real server), or this module fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from activities.metrics import METRIC_SOURCES, metric_source_for
from activities.routers import ROUTERS, router_for
from activities.routers.base import Router
from sluicegate.contracts import RouterState
from sluicegate.errors import SpecError
from sluicegate.spec import EnvoyRouter, EnvoyStats

if TYPE_CHECKING:
    from activities.metrics.base import MetricSource
    from tests.envoy_fixtures import EnvoyStack, Upstream

pytest_plugins = ["tests.envoy_fixtures"]


def envoy_router(envoy: EnvoyStack) -> Router:
    return router_for(
        EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir))
    )


def envoy_source(envoy: EnvoyStack) -> MetricSource:
    return metric_source_for(EnvoyStats(admin_url=envoy.admin_url))


ROUTER_HARNESSES: dict[str, Callable[[EnvoyStack], Router]] = {"envoy": envoy_router}
SOURCE_HARNESSES: dict[str, Callable[[EnvoyStack], MetricSource]] = {"envoy": envoy_source}


def test_every_registered_type_has_a_harness() -> None:
    assert set(ROUTERS) == set(ROUTER_HARNESSES)
    assert set(METRIC_SOURCES) == set(SOURCE_HARNESSES)


@pytest.mark.parametrize(
    ("factory", "kind"), [(router_for, "haproxy"), (metric_source_for, "prometheus")]
)
def test_an_unknown_type_is_refused_never_a_fallback(
    factory: Callable[[object], object], kind: str
) -> None:
    class Other:
        type = kind

    with pytest.raises(SpecError, match=kind):
        factory(Other())


@pytest.mark.parametrize("kind", sorted(ROUTERS))
async def test_router_apply_is_verified_idempotent_and_restorable(
    kind: str, envoy: EnvoyStack, upstreams: dict[str, Upstream]
) -> None:
    router = ROUTER_HARNESSES[kind](envoy)
    backup = await router.read_state()
    desired = RouterState(
        canary_weight=30,
        stable_endpoints=backup.stable_endpoints,
        canary_endpoints=(upstreams["other"].address,),
    )
    first = await router.apply(desired)
    assert first.matches(desired)
    assert (await router.apply(desired)).matches(first)  # Temporal retries: twice = once
    assert (await router.read_state()).matches(desired)
    assert (await router.restore(backup)).matches(backup)
    assert (await router.restore(backup)).matches(backup)
    assert (await router.read_state()).matches(backup)


@pytest.mark.parametrize("kind", sorted(METRIC_SOURCES))
async def test_metric_source_counters_only_grow(kind: str, envoy: EnvoyStack) -> None:
    source = SOURCE_HARNESSES[kind](envoy)
    await envoy.send(20)
    first = await source.collect()
    await envoy.send(20)
    second = await source.collect()
    assert first.stable is not None and second.stable is not None
    assert second.stable.requests >= first.stable.requests + 20
    assert second.at >= first.at
