"""The metric-source specs: where each check's requests, errors, latency and business
numbers come from."""

from __future__ import annotations

import string
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from sluicegate.spec.fields import AdminUrl, EnvName, SpecModel, UrlWithPath


class EnvoyStats(SpecModel):
    """Per-cluster request counts and latency histograms from Envoy's admin /stats."""

    type: Literal["envoy"] = "envoy"
    admin_url: AdminUrl
    stable_cluster: str = "stable"
    canary_cluster: str = "canary"
    measures_latency: ClassVar[bool] = True


class HAProxyStats(SpecModel):
    """Per-server response counts and times from HAProxy's Prometheus exporter."""

    type: Literal["haproxy"] = "haproxy"
    metrics_url: UrlWithPath = Field(description="e.g. http://127.0.0.1:8404/metrics")
    backend: str = Field(min_length=1)
    stable_server: str = "stable"
    canary_server: str = "canary"
    # HAProxy 2.6 exports per-server averages, not histograms: no percentiles to judge.
    measures_latency: ClassVar[bool] = False


class HttpProbe(SpecModel):
    """Synthetic requests to the stable and canary endpoints, for services without metrics."""

    type: Literal["http_probe"] = "http_probe"
    stable_url: UrlWithPath
    canary_url: UrlWithPath
    requests_per_check: int = Field(default=20, ge=1, le=1000)
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    measures_latency: ClassVar[bool] = True


QUERY_VARIABLES = ("service", "version", "arm", "interval")


def _promql_template(value: str) -> str:
    """A PromQL query with $service, $version, $arm (stable or canary) and $interval."""
    template = string.Template(value)
    if not template.is_valid():
        raise ValueError(f"not a valid template (write $$ for a literal $): {value!r}")
    if unknown := sorted(set(template.get_identifiers()) - set(QUERY_VARIABLES)):
        known = ", ".join(f"${name}" for name in QUERY_VARIABLES)
        raise ValueError(f"unknown variable ${unknown[0]} in {value!r}; known: {known}")
    return value


PromQL = Annotated[str, Field(min_length=1), AfterValidator(_promql_template)]
MetricLabel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class PrometheusSource(SpecModel):
    """Instant PromQL queries per arm: traffic counters and/or business metrics."""

    type: Literal["prometheus"] = "prometheus"
    url: UrlWithPath = Field(description="Prometheus's base URL, e.g. http://127.0.0.1:9090")
    requests: PromQL | None = Field(
        default=None, description="the arm's cumulative request count (one series)"
    )
    errors: PromQL | None = Field(
        default=None, description="the arm's cumulative failed requests (one series)"
    )
    latency_buckets: PromQL | None = Field(
        default=None, description="the arm's cumulative histogram: one series per `le`"
    )
    latency_unit: Literal["seconds", "milliseconds"] = "seconds"
    business: dict[MetricLabel, PromQL] = Field(
        default_factory=dict, description="name → query giving one number per arm"
    )
    token_env: EnvName | None = Field(default=None, description="bearer token, from the worker")
    username: str | None = None
    password_env: EnvName | None = Field(default=None, description="basic auth password")

    @model_validator(mode="after")
    def _something_to_ask(self) -> PrometheusSource:
        if (self.requests is None) != (self.errors is None):
            raise ValueError("give requests and errors together (or neither)")
        if self.requests is None and not self.business:
            raise ValueError("give requests and errors queries, business queries, or both")
        if self.latency_buckets is not None and self.requests is None:
            raise ValueError("latency_buckets needs requests and errors too")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        return self

    @property
    def counts_requests(self) -> bool:
        return self.requests is not None

    @property
    def measures_latency(self) -> bool:
        return self.latency_buckets is not None


# One member per metric-source module (activities/metrics/), discriminated by `type` as
# RouterSpec is.
MetricSourceSpec = Annotated[
    EnvoyStats | HAProxyStats | HttpProbe | PrometheusSource, Field(discriminator="type")
]
