"""HTTP probe source: Sluicegate sends its own GETs to the stable and canary endpoints.

For services with no metrics. Each `collect()` sends `requests_per_check` requests to each
URL and adds them to counters kept in this object, so samples are cumulative as the
contract requires (the watcher keeps one source per stage). See docs/metrics/http_probe.md.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from activities.metrics.base import SourceContext
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.spec import HttpProbe

# The bounds (ms) of the Envoy bootstrap's request-time histograms (deploy/envoy.py), so
# latency rules mean the same whichever source measures; +inf is added last.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 5000, 10000,
)  # fmt: skip
PACING_WINDOW = 0.5  # seconds over which one check's requests to an arm are spread
_BOUNDS = (*(float(b) for b in LATENCY_BUCKETS_MS), float("inf"))


@dataclass
class _Arm:
    """Cumulative counters of one arm; `hits[i]` counts answers in bucket i (not cumulative)."""

    requests: int = 0
    errors: int = 0
    hits: list[int] = field(default_factory=lambda: [0] * len(_BOUNDS))

    def answered(self, status: int, milliseconds: float) -> None:
        self.requests += 1
        self.errors += status >= 500
        self.hits[bisect.bisect_left(_BOUNDS, milliseconds)] += 1

    def failed(self) -> None:
        """No answer (connection refused or reset, timeout): an error with no latency."""
        self.requests += 1
        self.errors += 1

    def counters(self) -> ArmCounters:
        running = 0
        buckets: list[tuple[float, int]] = []
        for bound, hits in zip(_BOUNDS, self.hits, strict=True):
            running += hits
            buckets.append((bound, running))
        return ArmCounters(
            requests=self.requests, errors=self.errors, latency_buckets=tuple(buckets)
        )


class HttpProbeSource:
    """Metric source that measures both endpoints directly with synthetic GETs."""

    def __init__(self, spec: HttpProbe, context: SourceContext | None = None) -> None:
        self.spec = spec
        self._stable = _Arm()
        self._canary = _Arm()

    async def collect(self) -> Sample:
        """Probe both arms at once; return the counters accumulated over every collect."""
        await asyncio.gather(
            self._probe(self.spec.stable_url, self._stable),
            self._probe(self.spec.canary_url, self._canary),
        )
        return Sample(
            at=datetime.now(UTC), stable=self._stable.counters(), canary=self._canary.counters()
        )

    async def _probe(self, url: str, arm: _Arm) -> None:
        """Start the arm's requests at even spacing over PACING_WINDOW, not waiting for answers.

        Open loop, as real users arrive: an answer slower than the spacing overlaps the next
        request instead of delaying it, so a hanging endpoint costs at most the window plus
        one timeout; and a healthy endpoint sees one request at a time, so the measured
        latency is the endpoint's rather than this worker's own queueing.
        """
        count = self.spec.requests_per_check
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        timeout = httpx.Timeout(self.spec.timeout_seconds)
        async with (
            httpx.AsyncClient(timeout=timeout, limits=limits) as client,
            asyncio.TaskGroup() as requests,
        ):
            start = time.monotonic()
            for index in range(count):
                await asyncio.sleep(
                    max(0.0, start + index * PACING_WINDOW / count - time.monotonic())
                )
                requests.create_task(self._one(client, url, arm))

    async def _one(self, client: httpx.AsyncClient, url: str, arm: _Arm) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.spec.timeout_seconds):
                response = await client.get(url)
        except (httpx.HTTPError, OSError, TimeoutError):
            arm.failed()
            return
        arm.answered(response.status_code, (time.perf_counter() - started) * 1000)
