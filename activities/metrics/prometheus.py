"""Prometheus source: the spec's PromQL templates, resolved per arm, as instant queries.

`$service`, `$version` (the arm's version), `$arm` (`stable` or `canary`) and `$interval`
(the check interval, e.g. `10s`) are substituted. Counter queries must give one series;
`latency_buckets` one series per `le`. An empty result is "no data" for that arm, with
the resolved query in the sample's notes: never zero. See docs/metrics/prometheus.md.
"""

from __future__ import annotations

import asyncio
import math
import os
import string
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from activities.http import Site
from activities.metrics.base import SourceContext
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.errors import MetricsUnavailable, SpecError
from sluicegate.spec import PrometheusSource

Arm = Literal["stable", "canary"]
_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class NoData(Exception):
    """A query's result vector was empty."""


class PrometheusMetrics:
    """Metric source asking one Prometheus server, with one query per metric and arm."""

    def __init__(self, spec: PrometheusSource, context: SourceContext) -> None:
        self.spec = spec
        self.context = context

    async def collect(self) -> Sample:
        notes: list[str] = []
        http = Site(self.spec.url, _TIMEOUT, self._headers(), self._auth())
        stable, canary = await asyncio.gather(
            self._arm(http, "stable", notes), self._arm(http, "canary", notes)
        )
        return Sample(at=datetime.now(UTC), stable=stable, canary=canary, notes=tuple(notes))

    async def _arm(self, http: Site, arm: Arm, notes: list[str]) -> ArmCounters | None:
        """The arm's counters and business metrics; None if a counter query has no data."""
        spec = self.spec
        business = await self._business(http, arm, notes)
        if spec.requests is None or spec.errors is None:
            # A business-only source (in extra_sources): its arms carry just those values.
            return ArmCounters(requests=0, errors=0, business=business)
        try:
            requests, errors = await asyncio.gather(
                self._number(http, spec.requests, arm), self._number(http, spec.errors, arm)
            )
            buckets: tuple[tuple[float, int], ...] = ()
            if spec.latency_buckets is not None:
                buckets = await self._buckets(http, spec.latency_buckets, arm)
        except NoData as err:
            notes.append(f"{arm}: no data for {err}")
            return None
        return ArmCounters(
            requests=int(requests), errors=int(errors), latency_buckets=buckets, business=business
        )

    async def _business(self, http: Site, arm: Arm, notes: list[str]) -> dict[str, float]:
        names = list(self.spec.business)
        values = await asyncio.gather(
            *(self._number(http, self.spec.business[name], arm) for name in names),
            return_exceptions=True,
        )
        found: dict[str, float] = {}
        for name, value in zip(names, values, strict=True):
            if isinstance(value, NoData):
                notes.append(f"{arm}: no data for {value}")
            elif isinstance(value, BaseException):
                raise value
            else:
                found[name] = value
        return found

    async def _number(self, http: Site, template: str, arm: Arm) -> float:
        query = self.resolve(template, arm)
        series = await self._query(http, query)
        if len(series) != 1:
            raise MetricsUnavailable(
                f"query {query!r} gave {len(series)} series, needs exactly one: wrap it in sum()"
            )
        return _value(series[0], query)

    async def _buckets(self, http: Site, template: str, arm: Arm) -> tuple[tuple[float, int], ...]:
        query = self.resolve(template, arm)
        scale = 1000.0 if self.spec.latency_unit == "seconds" else 1.0
        buckets: list[tuple[float, int]] = []
        for series in await self._query(http, query):
            le = series.get("metric", {}).get("le")
            if le is None:
                raise MetricsUnavailable(
                    f"query {query!r} gave a series without an `le` label: use sum by (le) (...)"
                )
            bound = float(le) * scale if le != "+Inf" else math.inf
            buckets.append((bound, int(_value(series, query))))
        return tuple(sorted(buckets))

    def resolve(self, template: str, arm: Arm) -> str:
        """The template with this deployment's values for `arm`."""
        version = self.context.stable_version if arm == "stable" else self.context.canary_version
        return string.Template(template).substitute(
            service=self.context.service,
            version=version,
            arm=arm,
            interval=f"{max(int(self.context.interval.total_seconds()), 1)}s",
        )

    async def _query(self, http: Site, query: str) -> list[dict[str, Any]]:
        """The result vector of an instant query; NoData if it is empty."""
        try:
            response = await http.get("/api/v1/query", params={"query": query})
        except httpx.HTTPError as err:
            raise MetricsUnavailable(f"Prometheus {self.spec.url} unreachable: {err!r}") from err
        try:
            body = response.json()
        except ValueError:
            raise MetricsUnavailable(
                f"Prometheus {self.spec.url} answered HTTP {response.status_code} "
                f"without JSON: {response.text[:200]!r}"
            ) from None
        if body.get("status") != "success":
            raise MetricsUnavailable(
                f"Prometheus refused {query!r}: {body.get('errorType')}: {body.get('error')}"
            )
        data = body.get("data", {})
        if data.get("resultType") != "vector":
            raise MetricsUnavailable(
                f"query {query!r} gave a {data.get('resultType')}, needs an instant vector"
            )
        if not data.get("result"):
            raise NoData(query)
        return list(data["result"])

    def _headers(self) -> dict[str, str]:
        if self.spec.token_env is None:
            return {}
        return {"Authorization": f"Bearer {_from_env(self.spec.token_env, 'token_env')}"}

    def _auth(self) -> httpx.BasicAuth | None:
        if self.spec.username is None or self.spec.password_env is None:
            return None
        return httpx.BasicAuth(
            self.spec.username, _from_env(self.spec.password_env, "password_env")
        )


def _value(series: dict[str, Any], query: str) -> float:
    try:
        value = float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise MetricsUnavailable(f"query {query!r} gave a sample without a value") from None
    if math.isnan(value):
        raise NoData(f"{query} (NaN)")
    return value


def _from_env(name: str, field: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SpecError([f"analysis.source.{field}: the worker has no environment variable {name}"])
    return value
