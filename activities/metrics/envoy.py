"""Envoy stats source: per-cluster request counts, 5xx and latency from admin /stats/prometheus.

Requests are `cluster.<name>.upstream_rq_<code>` summed over codes. These include the
503s Envoy answers itself (connect failure, upstream reset, no healthy host), which
`upstream_rq_total` does not. Latency is the `upstream_rq_time` histogram, in ms.
See docs/metrics/envoy.md.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from activities.http import Site
from activities.metrics.base import SourceContext
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.errors import MetricsUnavailable
from sluicegate.spec import EnvoyStats

_TIMEOUT = httpx.Timeout(5.0, connect=1.0)
_REQUESTS = "envoy_cluster_upstream_rq"
_LATENCY = "envoy_cluster_upstream_rq_time_bucket"
# A current read's histograms trail its counters only by the requests of the last moment.
_CURRENT_GAP = 10
_MERGE_WAIT = 0.02  # s
_REREADS = 2


@dataclass
class _Arm:
    requests: int = 0
    errors: int = 0
    buckets: dict[float, int] = field(default_factory=dict[float, int])

    def counters(self) -> ArmCounters:
        return ArmCounters(
            requests=self.requests,
            errors=self.errors,
            latency_buckets=tuple(sorted(self.buckets.items())),
        )


class EnvoyStatsSource:
    """Metric source reading one Envoy's admin stats for the stable and canary clusters."""

    def __init__(self, spec: EnvoyStats, context: SourceContext | None = None) -> None:
        self.spec = spec
        names = "|".join(re.escape(c) for c in (spec.stable_cluster, spec.canary_cluster))
        # Envoy's own stat names (before tag extraction), so the answer stays small.
        # `upstream_rq_completed` exists (at 0) for every cluster: it tells idle from unknown.
        self._filter = rf"^cluster\.({names})\.upstream_rq_(\d\d\d|completed|time)$"

    async def collect(self) -> Sample:
        """One cumulative sample; an arm whose cluster Envoy does not know is None."""
        arms = _parse(await self._scrape())
        for _ in range(_REREADS):
            # Under load, a read can come before the histogram merge its prime started:
            # its histograms then trail its counters by every request since the merge
            # before, and a window would see no latency at all. Read again while the gap
            # closes; Envoy's own 503s have no latency, so a gap that stays is not a lag.
            if _untimed(arms) <= _CURRENT_GAP:
                break
            await asyncio.sleep(_MERGE_WAIT)
            again = _parse(await self._scrape())
            caught_up = _untimed(again) < _untimed(arms) - _CURRENT_GAP
            arms = again
            if not caught_up:
                break
        return Sample(
            at=datetime.now(UTC),
            stable=_counters(arms, self.spec.stable_cluster),
            canary=_counters(arms, self.spec.canary_cluster),
        )

    async def _scrape(self) -> str:
        url = self.spec.admin_url
        try:
            admin = Site(url, _TIMEOUT)
            # With stats_flush_on_admin, any /stats call starts a histogram merge that
            # finishes after the response: prime once so the real read is current.
            (await admin.get("/stats", params={"filter": "^$"})).raise_for_status()
            response = await admin.get("/stats/prometheus", params={"filter": self._filter})
            response.raise_for_status()
            return response.text
        except httpx.HTTPError as err:
            raise MetricsUnavailable(f"Envoy admin {url}/stats/prometheus failed: {err!r}") from err


def _parse(text: str) -> dict[str, _Arm]:
    arms: dict[str, _Arm] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            cluster = sample.labels.get("envoy_cluster_name")
            if cluster is None:
                continue
            arm = arms.setdefault(cluster, _Arm())
            code = sample.labels.get("envoy_response_code")
            # The parser names counter samples `<family>_total`, which makes Envoy's own
            # `upstream_rq_total` look alike: the response-code label tells them apart.
            if family.name == _REQUESTS and code is not None:
                arm.requests += int(sample.value)
                arm.errors += int(sample.value) if code.startswith("5") else 0
            elif sample.name == _LATENCY:
                arm.buckets[float(sample.labels["le"])] = int(sample.value)
    return arms


def _untimed(arms: dict[str, _Arm]) -> int:
    """Requests counted but not (yet) in the latency histogram, over both clusters."""
    return sum(max(arm.requests - arm.buckets.get(math.inf, 0), 0) for arm in arms.values())


def _counters(arms: dict[str, _Arm], cluster: str) -> ArmCounters | None:
    arm = arms.get(cluster)
    return arm.counters() if arm is not None else None
