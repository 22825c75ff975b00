"""The router specs: how Sluicegate reaches the proxy or platform that splits traffic."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, cast

from pydantic import Field, model_validator

from sluicegate.spec.fields import AdminUrl, EnvName, SpecModel, UrlWithPath

TaskQueue = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]


class RouterInstance(SpecModel):
    """What every router spec has: which instance it is, where its worker runs, and, for a
    fleet, its instances (each the same kind, with its own connection fields)."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the instance as evidence and errors name it; required in a fleet",
    )
    task_queue: TaskQueue | None = Field(
        default=None,
        description="task queue of the worker on this instance's host, for a router whose "
        "files must be local (Envoy EDS, nginx); default: the deployment's worker",
    )

    @model_validator(mode="before")
    @classmethod
    def _shared_fields_into_instances(cls, data: Any) -> Any:
        """A fleet's top-level fields are shared: each instance starts from them and sets
        its own; the top level takes the first instance's connection fields."""
        given = cast(dict[str, Any], data) if isinstance(data, dict) else {}
        instances: Any = given.get("instances")
        if not instances or not isinstance(instances, list | tuple):
            return cast(Any, data)  # one router, or pydantic names the wrong type
        shared = {key: value for key, value in given.items() if key not in ("instances", "name")}
        merged: list[Any] = [
            {**shared, **cast(dict[str, Any], each)} if isinstance(each, dict) else each
            for each in cast(list[Any], instances)
        ]
        first = cast(dict[str, Any], merged[0]) if isinstance(merged[0], dict) else {}
        return {**first, **shared, "name": given.get("name"), "instances": merged}

    @model_validator(mode="after")
    def _a_fleet_names_each_instance(self) -> Self:
        instances = cast(tuple[RouterInstance, ...], getattr(self, "instances", ()))
        if any(getattr(each, "instances", ()) for each in instances):
            raise ValueError("instances: an instance cannot have instances of its own")
        names = [each.name for each in instances]
        if len(instances) > 1 and (None in names or len(set(names)) != len(names)):
            raise ValueError(f"instances: give each instance a unique name, got {names}")
        return self

    def fleet(self) -> tuple[Self, ...]:
        """The instances every shift goes to: the fleet's, or this one alone."""
        return cast(tuple[Self, ...], getattr(self, "instances", ())) or (self,)

    def label(self) -> str:
        """The instance as the Web UI and evidence name it."""
        return self.name or cast(str, getattr(self, "type", "router"))


class EnvoyRouter(RouterInstance):
    """Envoy: weights through the admin runtime, upstream addresses through EDS files."""

    type: Literal["envoy"] = "envoy"
    admin_url: AdminUrl
    endpoints_dir: str = Field(
        description="directory Envoy watches for the <cluster>.yaml EDS files"
    )
    runtime_key: str = "sluicegate.canary_weight"
    stable_cluster: str = "stable"
    canary_cluster: str = "canary"
    instances: tuple[EnvoyRouter, ...] = Field(default=(), description="a fleet of Envoys")


class HAProxyRouter(RouterInstance):
    """HAProxy: server weights and addresses through the runtime API, no reload."""

    type: Literal["haproxy"] = "haproxy"
    runtime_api: str = Field(
        min_length=1,
        description="the admin-level stats socket: a unix socket path, or host:port for TCP",
    )
    backend: str = Field(min_length=1, description="the backend holding both servers")
    stable_server: str = "stable"
    canary_server: str = "canary"
    instances: tuple[HAProxyRouter, ...] = Field(default=(), description="a fleet of HAProxys")


class NginxRouter(RouterInstance):
    """nginx: a weighted upstream in a file Sluicegate owns, checked with `nginx -t` and
    applied with a graceful reload."""

    type: Literal["nginx"] = "nginx"
    upstream_file: str = Field(
        min_length=1, description="the file Sluicegate writes; nginx.conf includes it"
    )
    upstream: str = Field(min_length=1, description="name of the upstream block in that file")
    main_config: str = Field(min_length=1, description="nginx.conf, for `nginx -t` and reload")
    nginx_binary: str = Field(default="nginx", min_length=1)
    instances: tuple[NginxRouter, ...] = Field(default=(), description="a fleet of nginxes")


class WebhookRouter(RouterInstance):
    """Any platform: Sluicegate POSTs the desired weights as JSON and GETs them back."""

    type: Literal["webhook"] = "webhook"
    url: UrlWithPath
    token_env: EnvName | None = Field(
        default=None, description="worker environment variable holding a bearer token"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    instances: tuple[WebhookRouter, ...] = Field(default=(), description="several platforms")


# One member per router module (activities/routers/), discriminated by `type` so an unknown
# type stays a validation error, never a silent fallback.
RouterSpec = Annotated[
    EnvoyRouter | HAProxyRouter | NginxRouter | WebhookRouter, Field(discriminator="type")
]
