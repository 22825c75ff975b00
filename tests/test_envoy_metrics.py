"""EnvoyStatsSource against a real Envoy and real upstreams."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from activities.metrics import SourceContext, metric_source_for
from activities.metrics.envoy import EnvoyStatsSource
from activities.routers.envoy import EnvoyRouterClient
from deploy.processes import free_port
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.contracts import RouterState
from sluicegate.errors import MetricsUnavailable
from sluicegate.spec import EnvoyRouter, EnvoyStats
from tests.waiting import sample_until

if TYPE_CHECKING:
    from tests.envoy_fixtures import EnvoyStack, Upstream

pytest_plugins = ["tests.envoy_fixtures"]


def source(stack: EnvoyStack, **overrides: str) -> EnvoyStatsSource:
    return EnvoyStatsSource(EnvoyStats(admin_url=stack.admin_url, **overrides))


def requests(arm: ArmCounters | None) -> int:
    return arm.requests if arm else 0


async def test_idle_clusters_are_zero_and_unknown_clusters_none(envoy: EnvoyStack):
    sample = await source(envoy).collect()
    # Envoy knows both clusters and has counted nothing: a real zero, no histogram yet.
    assert sample.stable == ArmCounters(requests=0, errors=0, latency_buckets=())
    assert sample.canary == ArmCounters(requests=0, errors=0, latency_buckets=())
    assert sample.at.tzinfo is not None

    unknown = await source(envoy, canary_cluster="blue").collect()
    assert unknown.canary is None  # no stats at all for that name: no data
    assert unknown.stable == sample.stable


async def test_counts_requests_and_5xx_per_arm(envoy: EnvoyStack, upstreams: dict[str, Upstream]):
    assert await envoy.send(30) == {"200 stable": 30}
    sample = await sample_until(source(envoy), lambda s: requests(s.stable) == 30)
    assert (sample.stable.requests, sample.stable.errors) == (30, 0)  # type: ignore[union-attr]
    assert sample.canary == ArmCounters(requests=0, errors=0)

    upstreams["canary"].status = 500
    envoy.set_weight(100)
    assert await envoy.send(20) == {"500 canary": 20}
    sample = await sample_until(source(envoy), lambda s: requests(s.canary) == 20)
    assert sample.canary is not None and sample.stable is not None
    assert (sample.canary.requests, sample.canary.errors) == (20, 20)
    assert (sample.stable.requests, sample.stable.errors) == (30, 0)
    assert sample.canary.latency_buckets[-1] == (float("inf"), 20)


async def test_latency_buckets_show_a_slow_upstream(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    upstreams["canary"].delay = 0.2
    envoy.set_weight(100)
    assert await envoy.send(5) == {"200 canary": 5}

    sample = await sample_until(
        source(envoy),
        lambda s: bool(s.canary and s.canary.latency_buckets[-1:] == ((float("inf"), 5),)),
    )
    assert sample.canary is not None
    buckets = dict(sample.canary.latency_buckets)
    assert buckets[150.0] == 0  # nothing faster than the 200 ms sleep
    assert buckets[1000.0] == 5
    assert list(buckets) == sorted(buckets)


async def test_a_dead_canary_counts_as_errors(envoy: EnvoyStack, upstreams: dict[str, Upstream]):
    # All traffic to a closed port: Envoy answers 503 itself (connect failure), which
    # `upstream_rq_total` would miss.
    closed = f"127.0.0.1:{free_port()}"
    router = EnvoyRouterClient(
        EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir))
    )
    await router.apply(
        RouterState(
            canary_weight=100,
            stable_endpoints=(upstreams["stable"].address,),
            canary_endpoints=(closed,),
        )
    )
    answers = await envoy.send(10)
    assert sum(answers.values()) == 10 and all(k.startswith("503 ") for k in answers), answers

    sample = await sample_until(source(envoy), lambda s: requests(s.canary) == 10)
    assert sample.canary is not None
    assert (sample.canary.requests, sample.canary.errors) == (10, 10)


async def resets_at_canary(envoy: EnvoyStack, upstreams: dict[str, Upstream], count: int) -> Sample:
    """`count` requests to a canary that resets each (Envoy answers 503), once counted."""
    upstreams["canary"].reset = True
    envoy.set_weight(100)
    answers = await envoy.send(count)
    assert sum(answers.values()) == count and all(k.startswith("503 ") for k in answers), answers
    return await sample_until(source(envoy), lambda s: requests(s.canary) == count)


async def test_an_upstream_reset_counts_as_errors(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    sample = await resets_at_canary(envoy, upstreams, 10)
    assert sample.canary is not None
    assert (sample.canary.requests, sample.canary.errors) == (10, 10)


async def test_unreachable_admin_is_metrics_unavailable():
    admin_url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MetricsUnavailable, match=admin_url):
        await EnvoyStatsSource(EnvoyStats(admin_url=admin_url)).collect()


def test_registry_builds_the_envoy_stats_source():
    spec = EnvoyStats(admin_url="http://127.0.0.1:9901")
    context = SourceContext("checkout", "v1", "v2", timedelta(seconds=10))
    assert isinstance(metric_source_for(spec, context), EnvoyStatsSource)


class CountingSource(EnvoyStatsSource):
    """The Envoy source, counting its reads; `stale` answers the first read instead."""

    def __init__(self, stack: EnvoyStack, stale: str | None = None) -> None:
        super().__init__(EnvoyStats(admin_url=stack.admin_url))
        self.stale, self.reads = stale, 0

    async def _scrape(self) -> str:
        self.reads += 1
        text = await super()._scrape()
        return self.stale if self.reads == 1 and self.stale is not None else text


async def test_a_read_from_before_the_histogram_merge_is_read_again(envoy: EnvoyStack):
    assert await envoy.send(20) == {"200 stable": 20}
    await sample_until(source(envoy), lambda s: s.stable is not None and s.stable.timed == 20)
    before = await source(envoy)._scrape()
    assert await envoy.send(30) == {"200 stable": 30}
    await sample_until(source(envoy), lambda s: s.stable is not None and s.stable.timed == 50)
    now = await source(envoy)._scrape()
    # What Envoy answers when the read beats the merge: current counters, older histogram.
    counters = [line for line in now.splitlines() if "upstream_rq_time" not in line]
    histogram = [line for line in before.splitlines() if "upstream_rq_time" in line]
    stale = "\n".join(counters + histogram) + "\n"

    behind = CountingSource(envoy, stale)
    sample = await behind.collect()
    assert sample.stable is not None
    assert (sample.stable.requests, sample.stable.timed, behind.reads) == (50, 50, 2)

    current = CountingSource(envoy)
    assert (await current.collect()).stable == sample.stable and current.reads == 1


async def test_envoys_own_503s_cost_one_read_more_at_most(
    envoy: EnvoyStack, upstreams: dict[str, Upstream]
):
    counted = await resets_at_canary(envoy, upstreams, 20)
    assert counted.canary is not None and counted.canary.timed == 0  # no latency: a lasting gap

    reads = CountingSource(envoy)
    assert (await reads.collect()).canary == counted.canary
    assert reads.reads == 2
