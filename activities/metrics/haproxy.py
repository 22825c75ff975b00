"""HAProxy stats source: per-server requests and 5xx from HAProxy's Prometheus exporter.

Requests are the responses a server sent (all classes) plus the requests HAProxy could not
get through to it (connection errors, response errors such as resets), which HAProxy
answers itself with 503/502 and counts nowhere else; those count as errors too, with the
server's own 5xx. An arm is all its router slots: the server named `stable_server` and
those named it followed by digits (stable1, stable2, ...), summed. HAProxy 2.6 has no
per-server latency histogram, only averages, so `latency_buckets` is always empty.
See docs/metrics/haproxy.md.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from activities.http import Site
from activities.metrics.base import SourceContext
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.errors import MetricsUnavailable
from sluicegate.spec import HAProxyStats

_TIMEOUT = httpx.Timeout(5.0, connect=1.0)
_PREFIX = "haproxy_server_"
_RESPONSES = "haproxy_server_http_responses_total"
# Requests that got no response from the server; HAProxy answers them 503/502 itself.
_FAILED = ("haproxy_server_connection_errors_total", "haproxy_server_response_errors_total")


class HAProxyStatsSource:
    """Metric source reading one HAProxy's exporter for the two arms of one backend."""

    def __init__(self, spec: HAProxyStats, context: SourceContext | None = None) -> None:
        self.spec = spec

    async def collect(self) -> Sample:
        """One cumulative sample; an arm whose server the exporter does not list is None."""
        text = await self._scrape()
        try:
            arms = _parse(text, self.spec.backend)
        except (ValueError, IndexError) as err:
            raise MetricsUnavailable(
                f"HAProxy exporter {self.spec.metrics_url} answered something that is not "
                f"Prometheus text: {err} (first bytes: {text[:80]!r})"
            ) from err
        if arms is None:
            raise MetricsUnavailable(
                f"HAProxy exporter {self.spec.metrics_url} lists no {_PREFIX}* metrics: is it "
                "HAProxy's prometheus-exporter service?"
            )
        stable = _arm(arms, self.spec.stable_server)
        canary = _arm(arms, self.spec.canary_server)
        notes = tuple(
            f"HAProxy exporter lists no server {server!r} in backend {self.spec.backend!r}"
            for server, counters in (
                (self.spec.stable_server, stable),
                (self.spec.canary_server, canary),
            )
            if counters is None
        )
        return Sample(
            at=datetime.now(UTC),
            stable=stable,
            canary=canary,
            notes=notes,
        )

    async def _scrape(self) -> str:
        url = str(self.spec.metrics_url)
        try:
            # Server metrics only: the exporter's answer shrinks to what we read.
            response = await Site(url, _TIMEOUT).get(params={"scope": "server"})
            response.raise_for_status()
            return response.text
        except httpx.HTTPError as err:
            raise MetricsUnavailable(f"HAProxy exporter {url} failed: {err!r}") from err


def _parse(text: str, backend: str) -> dict[str, ArmCounters] | None:
    """Counters per server of `backend`; None when the text has no server metrics at all."""
    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    seen_server_metrics = False
    for family in text_string_to_metric_families(text):
        seen_server_metrics |= family.name.startswith(_PREFIX)
        for sample in family.samples:
            server = sample.labels.get("server")
            if sample.labels.get("proxy") != backend or server is None:
                continue
            requests.setdefault(server, 0)
            errors.setdefault(server, 0)
            if not math.isfinite(sample.value):
                continue
            count = int(sample.value)
            if sample.name == _RESPONSES:
                requests[server] += count
                errors[server] += count if sample.labels.get("code") == "5xx" else 0
            elif sample.name in _FAILED:
                requests[server] += count
                errors[server] += count
    if not seen_server_metrics:
        return None
    return {
        server: ArmCounters(requests=requests[server], errors=errors[server]) for server in requests
    }


def _arm(servers: dict[str, ArmCounters], base: str) -> ArmCounters | None:
    """The counters of `base` and its numbered slots summed; None if none is listed."""
    slots = [
        counters
        for name, counters in servers.items()
        if name.startswith(base) and (name == base or name[len(base) :].isdigit())
    ]
    if not slots:
        return None
    return ArmCounters(requests=sum(c.requests for c in slots), errors=sum(c.errors for c in slots))
