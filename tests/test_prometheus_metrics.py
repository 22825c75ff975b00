"""The Prometheus source against a real Prometheus scraping a real Envoy (and a tiny
exporter of business metrics): exact counts, no data, bad queries, an unreachable server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from activities.metrics import SourceContext, analysis_source, metric_source_for
from activities.metrics.combined import CombinedSource
from activities.metrics.prometheus import PrometheusMetrics
from deploy.processes import free_port
from deploy.prometheus import INSTALL_HINT, Prometheus, prometheus_binary
from sluicegate.analysis import judge_check, start_stage
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.errors import MetricsUnavailable
from sluicegate.spec import AnalysisSpec, EnvoyStats, PrometheusSource
from tests.waiting import eventually

if TYPE_CHECKING:
    from tests.envoy_fixtures import EnvoyStack, Upstream

pytest_plugins = ["tests.envoy_fixtures"]
pytestmark = pytest.mark.skipif(
    prometheus_binary() is None, reason=f"no prometheus: {INSTALL_HINT}"
)
CONTEXT = SourceContext("checkout", "v1", "v2", timedelta(seconds=10))
# Envoy's clusters are named after the arms, so `$arm` picks the series.
ENVOY_QUERIES: dict[str, Any] = {
    "requests": 'sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm"})',
    "errors": 'sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm",'
    'envoy_response_code=~"5.."}) or vector(0)',
    "latency_buckets": "sum by (le) "
    '(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="$arm"})',
    "latency_unit": "milliseconds",
}
ACCURACY = {"v1": 0.97, "v2": 0.90}


class BusinessExporter:
    """Serves `model_accuracy{version=...}` in the Prometheus text format."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = [f'model_accuracy{{version="{v}"}} {a}' for v, a in ACCURACY.items()]
                body = ("# TYPE model_accuracy gauge\n" + "\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus(envoy: EnvoyStack, tmp_path: Path) -> Iterator[Prometheus]:
    exporter = BusinessExporter()
    server = Prometheus(tmp_path / "prometheus", tmp_path / "logs")
    try:
        envoy_admin = envoy.admin_url.removeprefix("http://")
        server.start(
            {"envoy": (envoy_admin, "/stats/prometheus"), "business": (exporter.address, "/")}
        )
        yield server
    finally:
        server.stop()
        exporter.close()


def source(prometheus: Prometheus, **queries: Any) -> PrometheusMetrics:
    spec = PrometheusSource(url=prometheus.url, **{**ENVOY_QUERIES, **queries})
    return PrometheusMetrics(spec, CONTEXT)


async def scraped(probe: PrometheusMetrics, stable: int, canary: int) -> Sample:
    """The first sample whose request counts have reached what was sent."""
    found: list[Sample] = []

    def complete(arm: ArmCounters | None, sent: int) -> bool:
        if arm is None:  # Envoy has no series for a cluster that served nothing yet
            return sent == 0
        # Envoy flushes histograms on its own clock: wait until they hold every request.
        seen = arm.latency_buckets[-1][1] if arm.latency_buckets else 0
        return arm.requests == sent and seen == sent

    async def caught_up() -> bool:
        sample = await probe.collect()
        found[:] = [sample]
        return complete(sample.stable, stable) and complete(sample.canary, canary)

    await eventually(caught_up, f"Prometheus scraped {stable} + {canary} requests")
    return found[0]


async def test_known_request_mix_gives_exact_counts(
    envoy: EnvoyStack, upstreams: dict[str, Upstream], prometheus: Prometheus
) -> None:
    await envoy.send(30)  # 0% canary: all to stable
    envoy.set_weight(100)
    upstreams["canary"].status = 503
    await envoy.send(10)
    sample = await scraped(source(prometheus), stable=30, canary=10)
    assert sample.stable is not None and sample.canary is not None
    assert (sample.stable.errors, sample.canary.errors) == (0, 10)
    assert sample.stable.latency_buckets[-1][1] == 30  # +Inf holds every request
    assert sample.stable.latency_buckets[0][0] < 1000  # milliseconds, as Envoy reports
    assert sample.notes == ()


async def test_an_empty_result_is_no_data_naming_the_resolved_query(
    envoy: EnvoyStack, prometheus: Prometheus
) -> None:
    await envoy.send(5)
    probe = source(
        prometheus, requests='sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm-x"})'
    )
    sample = await probe.collect()
    assert sample.stable is None and sample.canary is None  # never zero
    assert any('envoy_cluster_name="stable-x"' in note for note in sample.notes)


@pytest.mark.parametrize(
    ("queries", "complaint"),
    [
        ({"requests": "sum(rate(envoy_cluster_upstream_rq[1m)"}, "Prometheus refused"),
        ({"requests": "envoy_cluster_upstream_rq_completed"}, "wrap it in sum()"),
        ({"latency_buckets": 'sum(envoy_cluster_upstream_rq{envoy_cluster_name="$arm"})'}, "le"),
    ],
)
async def test_bad_queries_are_reported_clearly(
    envoy: EnvoyStack, prometheus: Prometheus, queries: dict[str, str], complaint: str
) -> None:
    await envoy.send(5)
    probe = source(prometheus, **queries)
    await scraped(source(prometheus), stable=5, canary=0)
    with pytest.raises(MetricsUnavailable, match=complaint):
        await probe.collect()


async def test_an_unreachable_server_is_unavailable() -> None:
    spec = PrometheusSource(url=f"http://127.0.0.1:{free_port()}", **ENVOY_QUERIES)
    with pytest.raises(MetricsUnavailable, match="unreachable"):
        await metric_source_for(spec, CONTEXT).collect()


def arms(sample: Sample) -> tuple[ArmCounters | None, ArmCounters | None]:
    return sample.stable, sample.canary


async def test_business_metrics_join_the_main_sources_sample_and_are_judged(
    envoy: EnvoyStack, prometheus: Prometheus
) -> None:
    analysis = AnalysisSpec.model_validate(
        {
            "source": EnvoyStats(admin_url=envoy.admin_url),
            "extra_sources": [
                {
                    "type": "prometheus",
                    "url": prometheus.url,
                    "business": {"accuracy": 'avg(model_accuracy{version="$version"})'},
                }
            ],
            "business": [{"metric": "accuracy", "max_drop": 0.05}],
        }
    )
    combined = analysis_source(analysis, CONTEXT)
    assert isinstance(combined, CombinedSource)
    await envoy.send(5)
    envoy.set_weight(100)
    await envoy.send(5)
    samples: list[Sample] = []

    async def has_accuracy() -> bool:
        sample = await combined.collect()
        samples[:] = [sample]
        return all(arm is not None and "accuracy" in arm.business for arm in arms(sample))

    await eventually(has_accuracy, "accuracy scraped for both versions")
    sample = samples[0]
    assert sample.stable is not None and sample.canary is not None
    assert (sample.stable.business, sample.canary.business) == (
        {"accuracy": 0.97},
        {"accuracy": 0.90},
    )
    _, verdict = judge_check(start_stage(sample, analysis), sample, sample, analysis)
    accuracy = next(r for r in verdict.results if r.kind == "business")
    assert accuracy.status == "breach"  # 0.90 is more than 5% below 0.97
    assert accuracy.describe() == "accuracy = 0.9 (must be >= 0.9215, from stable's 0.97)"
