"""The router specs: how Sluicegate reaches the proxy or platform that splits traffic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sluicegate.spec.fields import AdminUrl, EnvName, SpecModel, UrlWithPath


class EnvoyRouter(SpecModel):
    """Envoy: weights through the admin runtime, upstream addresses through EDS files."""

    type: Literal["envoy"] = "envoy"
    admin_url: AdminUrl
    endpoints_dir: str = Field(
        description="directory Envoy watches for the <cluster>.yaml EDS files"
    )
    runtime_key: str = "sluicegate.canary_weight"
    stable_cluster: str = "stable"
    canary_cluster: str = "canary"


class HAProxyRouter(SpecModel):
    """HAProxy: server weights and addresses through the runtime API, no reload."""

    type: Literal["haproxy"] = "haproxy"
    runtime_api: str = Field(
        min_length=1,
        description="the admin-level stats socket: a unix socket path, or host:port for TCP",
    )
    backend: str = Field(min_length=1, description="the backend holding both servers")
    stable_server: str = "stable"
    canary_server: str = "canary"


class NginxRouter(SpecModel):
    """nginx: a weighted upstream in a file Sluicegate owns, checked with `nginx -t` and
    applied with a graceful reload."""

    type: Literal["nginx"] = "nginx"
    upstream_file: str = Field(
        min_length=1, description="the file Sluicegate writes; nginx.conf includes it"
    )
    upstream: str = Field(min_length=1, description="name of the upstream block in that file")
    main_config: str = Field(min_length=1, description="nginx.conf, for `nginx -t` and reload")
    nginx_binary: str = Field(default="nginx", min_length=1)


class WebhookRouter(SpecModel):
    """Any platform: Sluicegate POSTs the desired weights as JSON and GETs them back."""

    type: Literal["webhook"] = "webhook"
    url: UrlWithPath
    token_env: EnvName | None = Field(
        default=None, description="worker environment variable holding a bearer token"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


# One member per router module (activities/routers/), discriminated by `type` so an unknown
# type stays a validation error, never a silent fallback.
RouterSpec = Annotated[
    EnvoyRouter | HAProxyRouter | NginxRouter | WebhookRouter, Field(discriminator="type")
]
