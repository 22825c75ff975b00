"""HttpProbeSource against small real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from activities.metrics import SourceContext, metric_source_for
from activities.metrics.http_probe import LATENCY_BUCKETS_MS, HttpProbeSource
from deploy.envoy import LATENCY_BUCKETS_MS as ENVOY_BUCKETS_MS
from deploy.processes import free_port
from sluicegate.analysis import judge_check, start_stage
from sluicegate.analysis.samples import ArmCounters
from sluicegate.spec import AnalysisSpec, HttpProbe

INF = float("inf")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 would drop the probe's parallel connects
    daemon_threads = True


class Endpoint:
    """An HTTP server whose answer to its n-th request (from 1) is `status(n)`, after `delay` s."""

    def __init__(self, status: Callable[[int], int] = lambda n: 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.served = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                with endpoint.lock:
                    endpoint.served += 1
                    number = endpoint.served
                    endpoint.in_flight += 1
                    endpoint.most_in_flight = max(endpoint.most_in_flight, endpoint.in_flight)
                try:
                    time.sleep(endpoint.delay)  # a slow service, not test synchronisation
                    body = b"ok"
                    self.send_response(endpoint.status(number))
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the probe gave up (timeout) and closed the connection
                finally:
                    with endpoint.lock:
                        endpoint.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints() -> Iterator[Callable[..., Endpoint]]:
    """Make endpoints; all are closed at teardown."""
    made: list[Endpoint] = []

    def make(**kwargs: Any) -> Endpoint:
        made.append(Endpoint(**kwargs))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.close()


def probe(stable: str, canary: str, **fields: Any) -> HttpProbeSource:
    return HttpProbeSource(HttpProbe(stable_url=stable, canary_url=canary, **fields))


def every_tenth_fails(n: int) -> int:
    return 500 if n % 10 == 0 else 200


def counts(arm: ArmCounters | None) -> tuple[int, int]:
    assert arm is not None
    return arm.requests, arm.errors


async def test_a_known_mix_gives_exact_counts(endpoints):
    stable, canary = endpoints(status=every_tenth_fails), endpoints()
    sample = await probe(stable.url, canary.url, requests_per_check=20).collect()
    assert counts(sample.stable) == (20, 2)
    assert counts(sample.canary) == (20, 0)
    assert (stable.served, canary.served) == (20, 20)
    assert sample.at.tzinfo is not None


async def test_counters_are_cumulative_across_collects(endpoints):
    stable, canary = endpoints(status=every_tenth_fails), endpoints(status=every_tenth_fails)
    source = probe(stable.url, canary.url, requests_per_check=20)
    samples = [await source.collect() for _ in range(3)]

    assert [counts(s.canary) for s in samples] == [(20, 2), (40, 4), (60, 6)]
    assert [counts(s.stable) for s in samples] == [(20, 2), (40, 4), (60, 6)]
    assert samples[0].at <= samples[1].at <= samples[2].at
    window = samples[2].canary.since(samples[1].canary)  # type: ignore[union-attr]
    assert (window.requests, window.errors) == (20, 2)
    assert window.latency_buckets[-1] == (INF, 20)


async def test_a_dead_canary_counts_as_errors_not_as_no_data(endpoints):
    stable = endpoints()
    dead = f"http://127.0.0.1:{free_port()}/health"
    source = probe(stable.url, dead, requests_per_check=20)
    first, second = await source.collect(), await source.collect()

    assert counts(second.canary) == (40, 40)
    assert second.canary is not None and second.canary.latency_buckets[-1] == (INF, 0)
    assert counts(second.stable) == (40, 0)
    # So the very next check rolls back, instead of waiting out the no-data tolerance.
    policy = AnalysisSpec(source=source.spec)
    _, verdict = judge_check(start_stage(first, policy), first, second, policy)
    assert verdict.status == "breach" and verdict.rollback


async def test_timeouts_are_errors(endpoints):
    stable, slow = endpoints(), endpoints(delay=0.5)
    sample = await probe(stable.url, slow.url, requests_per_check=4, timeout_seconds=0.1).collect()
    assert counts(sample.canary) == (4, 4)
    assert sample.canary is not None and sample.canary.latency_buckets[-1] == (INF, 0)
    assert counts(sample.stable) == (4, 0)


async def test_4xx_answers_are_requests_not_errors(endpoints):
    stable, canary = endpoints(), endpoints(status=lambda n: 404)
    sample = await probe(stable.url, canary.url, requests_per_check=10).collect()
    assert counts(sample.canary) == (10, 0)


async def test_latency_buckets_are_cumulative_with_the_envoy_bounds(endpoints):
    fast, slow = endpoints(), endpoints(delay=0.05)
    sample = await probe(fast.url, slow.url, requests_per_check=20).collect()
    assert sample.canary is not None and sample.stable is not None

    for arm in (sample.stable, sample.canary):
        bounds = [le for le, _ in arm.latency_buckets]
        assert bounds == [*map(float, ENVOY_BUCKETS_MS), INF]
        cumulative = [count for _, count in arm.latency_buckets]
        assert cumulative == sorted(cumulative)  # never decreasing
        assert cumulative[-1] == 20
    buckets = dict(sample.canary.latency_buckets)
    assert buckets[25.0] == 0  # nothing answered faster than the 50 ms the server sleeps


async def test_a_slow_endpoints_requests_overlap_instead_of_waiting(endpoints):
    fast, slow = endpoints(), endpoints(delay=0.2)
    sample = await probe(fast.url, slow.url, requests_per_check=20).collect()
    # Paced open loop: requests 25 ms apart; 200 ms answers overlap, never held back.
    assert slow.most_in_flight > 1
    assert counts(sample.canary) == (20, 0)
    assert dict(sample.canary.latency_buckets)[150.0] == 0  # type: ignore[union-attr]


def test_bounds_are_the_envoy_bounds():
    assert tuple(LATENCY_BUCKETS_MS) == tuple(ENVOY_BUCKETS_MS)


def test_registry_builds_the_http_probe():
    spec = HttpProbe(stable_url="http://127.0.0.1:8080/health", canary_url="http://x:1/")
    context = SourceContext("checkout", "v1", "v2", timedelta(seconds=10))
    assert isinstance(metric_source_for(spec, context), HttpProbeSource)
