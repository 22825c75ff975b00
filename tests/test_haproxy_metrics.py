"""HAProxyStatsSource against a real HAProxy exporter and real upstreams."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from activities.metrics import SourceContext, metric_source_for
from activities.metrics.haproxy import HAProxyStatsSource
from activities.routers.haproxy import HAProxyRouterClient
from deploy.processes import free_port
from sluicegate.analysis.samples import ArmCounters
from sluicegate.contracts import RouterState
from sluicegate.errors import MetricsUnavailable
from sluicegate.spec import HAProxyStats
from tests.waiting import sample_until

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream
    from tests.haproxy_fixtures import HAProxyStack

pytest_plugins = ["tests.haproxy_fixtures"]


def source(stack: HAProxyStack, **overrides: str) -> HAProxyStatsSource:
    return HAProxyStatsSource(stack.stats_spec(**overrides))


def requests(arm: ArmCounters | None) -> int:
    return arm.requests if arm else 0


async def send_with_status(
    stack: HAProxyStack, upstream: Upstream, status: int, count: int
) -> None:
    upstream.status = status
    assert await stack.send(count) == {f"{status} {upstream.name}": count}


async def test_idle_servers_are_zero_and_unknown_servers_none(haproxy: HAProxyStack):
    sample = await source(haproxy).collect()
    # The exporter lists both servers with every counter at 0: a real zero, no histogram.
    assert sample.stable == ArmCounters(requests=0, errors=0, latency_buckets=())
    assert sample.canary == ArmCounters(requests=0, errors=0, latency_buckets=())
    assert sample.at.tzinfo is not None

    assert sample.notes == ()

    unknown = await source(haproxy, canary_server="blue").collect()
    assert unknown.canary is None  # not listed at all: no data, never zero
    assert unknown.stable == sample.stable
    assert unknown.notes == ("HAProxy exporter lists no server 'blue' in backend 'service'",)

    no_backend = await source(haproxy, backend="blue").collect()
    assert no_backend.stable is None and no_backend.canary is None


async def test_counts_requests_and_5xx_per_server(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    await send_with_status(haproxy, upstreams["stable"], 500, 3)
    await send_with_status(haproxy, upstreams["stable"], 200, 297)
    await haproxy.set_weights(stable=0, canary=100)
    await send_with_status(haproxy, upstreams["canary"], 500, 10)
    await send_with_status(haproxy, upstreams["canary"], 404, 5)  # a 4xx is not an error
    await send_with_status(haproxy, upstreams["canary"], 200, 85)

    sample = await sample_until(
        source(haproxy), lambda s: requests(s.stable) == 300 and requests(s.canary) == 100
    )
    assert sample.stable == ArmCounters(requests=300, errors=3)
    assert sample.canary == ArmCounters(requests=100, errors=10)


async def test_an_arm_counts_all_its_slots(
    start_haproxy: Callable[..., HAProxyStack], fleets: dict[str, tuple[Upstream, ...]]
):
    haproxy = start_haproxy(slots=3)
    desired = RouterState(
        canary_weight=50,
        stable_endpoints=tuple(u.address for u in fleets["stable"][:2]),
        canary_endpoints=tuple(u.address for u in fleets["canary"]),
    )
    await HAProxyRouterClient(haproxy.router_spec()).apply(desired)
    fleets["canary"][2].status = 500
    answers = await haproxy.send(120)
    canary_5xx = answers[f"500 {fleets['canary'][2].name}"]
    to_canary = canary_5xx + sum(answers[f"200 {u.name}"] for u in fleets["canary"][:2])
    assert canary_5xx > 0 and 0 < to_canary < 120, answers

    sample = await sample_until(
        source(haproxy), lambda s: requests(s.stable) + requests(s.canary) == 120
    )
    assert sample.canary == ArmCounters(requests=to_canary, errors=canary_5xx)
    assert sample.stable == ArmCounters(requests=120 - to_canary, errors=0)


async def test_a_dead_canary_counts_as_errors(haproxy: HAProxyStack):
    # Nothing listens there: HAProxy answers 503 itself and the server sent no response,
    # so only its connection-error counter moves.
    port = free_port()
    answer = await haproxy.admin(f"set server service/canary addr 127.0.0.1 port {port}")
    assert "port changed" in answer, answer
    await haproxy.set_weights(stable=0, canary=100)
    answers = await haproxy.send(5)
    assert sum(answers.values()) == 5 and all(k.startswith("503 ") for k in answers), answers

    sample = await sample_until(source(haproxy), lambda s: requests(s.canary) >= 5)
    assert sample.canary == ArmCounters(requests=5, errors=5)
    assert sample.stable == ArmCounters(requests=0, errors=0)


async def test_an_upstream_reset_counts_as_errors(
    haproxy: HAProxyStack, upstreams: dict[str, Upstream]
):
    upstreams["canary"].reset = True
    await haproxy.set_weights(stable=0, canary=100)
    answers = await haproxy.send(10)
    assert not any(k.startswith("2") for k in answers), answers  # 502s or dropped connections

    sample = await sample_until(source(haproxy), lambda s: requests(s.canary) > 0)
    assert sample.canary is not None
    # HAProxy 2.6 counts resets only roughly (measured: 7 to 20 for 10 requests), but each
    # one it counts is a request and an error: the canary's error rate is 100%.
    assert sample.canary.errors == sample.canary.requests
    assert sample.stable == ArmCounters(requests=0, errors=0)


async def test_no_latency_buckets_even_with_traffic(haproxy: HAProxyStack):
    assert await haproxy.send(5) == {"200 stable": 5}
    sample = await sample_until(source(haproxy), lambda s: requests(s.stable) == 5)
    # HAProxy 2.6 exports only averages and maxima of response times, never a histogram.
    assert sample.stable is not None and sample.stable.latency_buckets == ()


async def test_unreachable_exporter_is_metrics_unavailable():
    url = f"http://127.0.0.1:{free_port()}/metrics"
    with pytest.raises(MetricsUnavailable, match=url) as caught:
        await HAProxyStatsSource(HAProxyStats(metrics_url=url, backend="service")).collect()
    assert caught.value.retryable


async def test_an_http_error_is_metrics_unavailable(haproxy: HAProxyStack):
    url = haproxy.metrics_url.replace("/metrics", "/elsewhere")  # no exporter on this path
    with pytest.raises(MetricsUnavailable, match="503"):
        await HAProxyStatsSource(HAProxyStats(metrics_url=url, backend="service")).collect()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html><body>hello</body></html>", "not Prometheus text"),
        ("# TYPE up gauge\nup 1\n", "no haproxy_server_"),
    ],
)
async def test_garbage_is_metrics_unavailable(
    body: str, problem: str, upstreams: dict[str, Upstream]
):
    page = upstreams["other"]
    page.name = body  # it answers every GET with its name
    url = f"http://{page.address}/metrics"
    with pytest.raises(MetricsUnavailable, match=problem) as caught:
        await HAProxyStatsSource(HAProxyStats(metrics_url=url, backend="service")).collect()
    assert url in str(caught.value)


def test_registry_builds_the_haproxy_stats_source():
    spec = HAProxyStats(metrics_url="http://127.0.0.1:8404/metrics", backend="web")
    context = SourceContext(
        service="checkout", stable_version="v1", canary_version="v2", interval=timedelta(seconds=10)
    )
    assert isinstance(metric_source_for(spec, context), HAProxyStatsSource)
