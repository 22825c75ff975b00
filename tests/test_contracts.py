"""Every registered router and metric source keeps the interface's promises.

Parametrised over the registries: a new router or metric source must add a harness here
(how to build one against its real server), or this module fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from activities.metrics import METRIC_SOURCES, SourceContext, metric_source_for
from activities.routers import ROUTERS, router_for
from activities.routers.base import Router
from deploy.prometheus import INSTALL_HINT, Prometheus, prometheus_binary
from sluicegate.contracts import RouterState
from sluicegate.errors import SpecError
from sluicegate.spec import EnvoyRouter, EnvoyStats, HttpProbe, PrometheusSource, WebhookRouter
from tests.test_webhook_router import Platform
from tests.waiting import eventually

if TYPE_CHECKING:
    from activities.metrics.base import MetricSource
    from tests.envoy_fixtures import EnvoyStack, Upstream
    from tests.haproxy_fixtures import HAProxyStack
    from tests.nginx_fixtures import NginxStack

pytest_plugins = ["tests.envoy_fixtures", "tests.haproxy_fixtures", "tests.nginx_fixtures"]
CONTEXT = SourceContext("checkout", "v1", "v2", timedelta(seconds=1))
Send = Callable[[int], Awaitable[Any]]


@pytest.fixture
def platform() -> Iterator[Platform]:
    platform = Platform()
    try:
        yield platform
    finally:
        platform.server.shutdown()
        platform.server.server_close()


@pytest.fixture
def prometheus_on_envoy(envoy: EnvoyStack, tmp_path: Any) -> Iterator[Prometheus]:
    if prometheus_binary() is None:
        pytest.skip(f"no prometheus: {INSTALL_HINT}")
    server = Prometheus(tmp_path / "prometheus", tmp_path / "logs")
    try:
        server.start({"envoy": (envoy.admin_url.removeprefix("http://"), "/stats/prometheus")})
        yield server
    finally:
        server.stop()


# How to build each registered router against its real server (by fixture).
def envoy_router(request: pytest.FixtureRequest) -> Router:
    envoy: EnvoyStack = request.getfixturevalue("envoy")
    return router_for(
        EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir))
    )


def haproxy_router(request: pytest.FixtureRequest) -> Router:
    haproxy: HAProxyStack = request.getfixturevalue("haproxy")
    return router_for(haproxy.router_spec())


def nginx_router(request: pytest.FixtureRequest) -> Router:
    nginx: NginxStack = request.getfixturevalue("nginx")
    return router_for(nginx.spec())


def webhook_router(request: pytest.FixtureRequest) -> Router:
    platform: Platform = request.getfixturevalue("platform")
    upstreams: dict[str, Upstream] = request.getfixturevalue("upstreams")
    platform.state = {
        "canary_weight": 0,
        "stable_endpoints": [upstreams["stable"].address],
        "canary_endpoints": [],
    }
    return router_for(WebhookRouter(url=platform.url))


# How to build each registered metric source, and how to send it traffic to count.
def envoy_source(request: pytest.FixtureRequest) -> tuple[MetricSource, Send]:
    envoy: EnvoyStack = request.getfixturevalue("envoy")
    return metric_source_for(EnvoyStats(admin_url=envoy.admin_url), CONTEXT), envoy.send


def haproxy_source(request: pytest.FixtureRequest) -> tuple[MetricSource, Send]:
    haproxy: HAProxyStack = request.getfixturevalue("haproxy")
    return metric_source_for(haproxy.stats_spec(), CONTEXT), haproxy.send


def http_probe_source(request: pytest.FixtureRequest) -> tuple[MetricSource, Send]:
    upstreams: dict[str, Upstream] = request.getfixturevalue("upstreams")
    spec = HttpProbe(
        stable_url=f"http://{upstreams['stable'].address}/",
        canary_url=f"http://{upstreams['canary'].address}/",
        requests_per_check=5,
    )

    async def nothing(count: int) -> None:  # the probe sends its own requests
        return None

    return metric_source_for(spec, CONTEXT), nothing


def prometheus_source(request: pytest.FixtureRequest) -> tuple[MetricSource, Send]:
    envoy: EnvoyStack = request.getfixturevalue("envoy")
    prometheus: Prometheus = request.getfixturevalue("prometheus_on_envoy")
    spec = PrometheusSource(
        url=prometheus.url,
        requests='sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm"})',
        errors='sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm",'
        'envoy_response_code=~"5.."}) or vector(0)',
    )
    return metric_source_for(spec, CONTEXT), envoy.send


ROUTER_HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Router]] = {
    "envoy": envoy_router,
    "haproxy": haproxy_router,
    "nginx": nginx_router,
    "webhook": webhook_router,
}
SOURCE_HARNESSES: dict[str, Callable[[pytest.FixtureRequest], tuple[MetricSource, Send]]] = {
    "envoy": envoy_source,
    "haproxy": haproxy_source,
    "http_probe": http_probe_source,
    "prometheus": prometheus_source,
}


def test_every_registered_type_has_a_harness() -> None:
    assert set(ROUTERS) == set(ROUTER_HARNESSES)
    assert set(METRIC_SOURCES) == set(SOURCE_HARNESSES)


@pytest.mark.parametrize(
    ("factory", "kind"),
    [(router_for, "traefik"), (lambda spec: metric_source_for(spec, CONTEXT), "graphite")],
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
    kind: str, request: pytest.FixtureRequest, upstreams: dict[str, Upstream]
) -> None:
    router = ROUTER_HARNESSES[kind](request)
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
async def test_metric_source_counters_only_grow(kind: str, request: pytest.FixtureRequest) -> None:
    """Counters never go back, and they come to count the traffic sent (a scraping source
    may lag a little)."""
    source, send = SOURCE_HARNESSES[kind](request)
    await send(20)
    samples = [await source.collect()]

    async def counted_more() -> bool:
        sample = await source.collect()
        assert sample.at >= samples[-1].at
        previous = samples[-1].stable.requests if samples[-1].stable else 0
        assert sample.stable is None or sample.stable.requests >= previous
        samples.append(sample)
        first = samples[0].stable.requests if samples[0].stable else 0
        return sample.stable is not None and sample.stable.requests >= first + 20

    await send(20)
    await eventually(counted_more, f"{kind} counts 20 more stable requests")
