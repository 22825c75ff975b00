"""Traffic routers, one module each, chosen by the spec's `type` through `router_for`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.routers.base import Router
from activities.routers.envoy import EnvoyRouterClient
from activities.routers.haproxy import HAProxyRouterClient
from activities.routers.nginx import NginxRouterClient
from activities.routers.webhook import WebhookRouterClient
from sluicegate.errors import SpecError
from sluicegate.spec import RouterSpec

# One line per router module; the key is the spec model's `type`.
ROUTERS: dict[str, Callable[[Any], Router]] = {
    "envoy": EnvoyRouterClient,
    "haproxy": HAProxyRouterClient,
    "nginx": NginxRouterClient,
    "webhook": WebhookRouterClient,
}


def router_for(spec: RouterSpec) -> Router:
    """The router implementation for `spec`; an unknown type is a SpecError, never a fallback."""
    kind = getattr(spec, "type", type(spec).__name__)
    factory = ROUTERS.get(kind)
    if factory is None:
        raise SpecError([f"router.type: no router named {kind!r} (known: {', '.join(ROUTERS)})"])
    return factory(spec)


__all__ = ["ROUTERS", "Router", "router_for"]
