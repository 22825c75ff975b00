"""Envoy router: the canary weight lives in the admin runtime layer, endpoints in EDS files.

Envoy must run a bootstrap like the one `deploy/envoy.py` writes: a route matched by
`runtime_fraction` on `runtime_key` (default 0%) to the canary cluster, a catch-all route
to the stable cluster, and both clusters of `type: EDS` reading
`<endpoints_dir>/<cluster>.yaml`. See docs/routers/envoy.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import yaml

from activities.http import Site
from activities.routers.base import ReadBackRouter
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable, SpecError
from sluicegate.spec import EnvoyRouter

DEFAULT_RUNTIME_KEY = "sluicegate.canary_weight"
EDS_PICKUP_TIMEOUT = 5.0  # seconds Envoy gets to load a replaced EDS file
_POLL = 0.05
_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
_LOAD_ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def write_endpoints(path: Path, cluster: str, addresses: Sequence[str]) -> None:
    """Atomically replace `path` with an EDS DiscoveryResponse for `cluster`.

    A temporary file in the same directory is renamed over `path`, so Envoy's file
    watch never sees a half-written file.
    """
    lb_endpoints = [{"endpoint": {"address": {"socket_address": _socket(a)}}} for a in addresses]
    assignment = {
        "@type": _LOAD_ASSIGNMENT,
        "cluster_name": cluster,
        "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
    }
    version = hashlib.sha256(repr(sorted(addresses)).encode()).hexdigest()[:12]
    text = yaml.safe_dump({"version_info": version, "resources": [assignment]}, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _socket(address: str) -> dict[str, Any]:
    """`host:port` (or `[v6]:port`) as an Envoy socket_address; EDS needs an IP, not a name."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        port_value = int(port)
    except ValueError:
        raise SpecError(
            [f"endpoint {address!r}: Envoy EDS endpoints need IP:port (no host names)"]
        ) from None
    return {"address": host, "port_value": port_value}


def _address(socket_address: dict[str, Any]) -> str:
    host, port = socket_address["address"], socket_address["port_value"]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EnvoyRouterClient(ReadBackRouter[Site]):
    """Router for one Envoy, steered through its admin API and EDS files."""

    kind = "envoy"

    def __init__(self, spec: EnvoyRouter) -> None:
        self.spec = spec
        self.endpoints_dir = Path(spec.endpoints_dir)

    @property
    def where(self) -> str:
        return f"Envoy at {self.spec.admin_url}"

    def _connect(self) -> AbstractAsyncContextManager[Site]:
        return nullcontext(Site(self.spec.admin_url, _TIMEOUT))

    def _validate(self, desired: RouterState) -> RouterState:
        """Refuse host names before changing anything."""
        for address in (*desired.stable_endpoints, *desired.canary_endpoints):
            _socket(address)
        return desired

    async def _write(self, client: Site, desired: RouterState) -> None:
        """Lower the weight, swap changed endpoints (waiting for Envoy), raise the weight."""
        current = await self._read(client)
        if desired.canary_weight < current.canary_weight:
            await self._set_weight(client, desired.canary_weight)
        for cluster, old, new in (
            (self.spec.stable_cluster, current.stable_endpoints, desired.stable_endpoints),
            (self.spec.canary_cluster, current.canary_endpoints, desired.canary_endpoints),
        ):
            if sorted(old) != sorted(new):
                await self._set_endpoints(client, cluster, new)
        if desired.canary_weight > current.canary_weight:
            await self._set_weight(client, desired.canary_weight)

    async def _get(self, client: Site, path: str) -> Any:
        try:
            response = await client.get(path)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise RouterUnavailable(
                f"Envoy admin {self.spec.admin_url}{path} failed: {err!r}"
            ) from err

    async def _read(self, client: Site) -> RouterState:
        """Canary weight from /runtime (missing key = route default 0), endpoints from /clusters."""
        runtime = await self._get(client, "/runtime")
        clusters = await self._get(client, "/clusters?format=json")
        hosts = {
            status["name"]: tuple(
                _address(host["address"]["socket_address"])
                for host in status.get("host_statuses", [])
            )
            for status in clusters.get("cluster_statuses", [])
        }
        return RouterState(
            canary_weight=self._weight(runtime),
            stable_endpoints=self._hosts(hosts, self.spec.stable_cluster),
            canary_endpoints=self._hosts(hosts, self.spec.canary_cluster),
        )

    def _weight(self, runtime: dict[str, Any]) -> int:
        entry = runtime.get("entries", {}).get(self.spec.runtime_key)
        if entry is None:
            return 0  # the route's default_value: no canary traffic
        value = entry.get("final_value", "")
        if not (value.isdigit() and int(value) <= 100):
            raise RouterMisconfigured(
                f"Envoy at {self.spec.admin_url}: runtime key {self.spec.runtime_key!r} "
                f"is {value!r}, expected a whole percentage 0-100"
            )
        return int(value)

    def _hosts(self, hosts: dict[str, tuple[str, ...]], cluster: str) -> tuple[str, ...]:
        if cluster not in hosts:
            raise RouterMisconfigured(
                f"Envoy at {self.spec.admin_url} has no cluster {cluster!r} "
                f"(clusters: {', '.join(sorted(hosts)) or 'none'})"
            )
        return hosts[cluster]

    async def _set_weight(self, client: Site, weight: int) -> None:
        path = f"/runtime_modify?{self.spec.runtime_key}={weight}"
        try:
            response = await client.post("/runtime_modify", params={self.spec.runtime_key: weight})
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise RouterUnavailable(
                f"Envoy admin {self.spec.admin_url}{path} failed: {err!r}"
            ) from err

    async def _set_endpoints(self, client: Site, cluster: str, addresses: Sequence[str]) -> None:
        """Replace the cluster's EDS file and wait until /clusters shows the new hosts."""
        path = self.endpoints_dir / f"{cluster}.yaml"
        if not self.endpoints_dir.is_dir():
            raise RouterMisconfigured(
                f"EDS directory {self.endpoints_dir} does not exist here: the worker must "
                "share a filesystem with Envoy"
            )
        write_endpoints(path, cluster, addresses)
        deadline = time.monotonic() + EDS_PICKUP_TIMEOUT
        while True:
            state = await self._read(client)
            seen = (
                state.stable_endpoints
                if cluster == self.spec.stable_cluster
                else state.canary_endpoints
            )
            if sorted(seen) == sorted(addresses):
                return
            if time.monotonic() >= deadline:
                raise RouterUnavailable(
                    f"Envoy at {self.spec.admin_url} did not load {path} within "
                    f"{EDS_PICKUP_TIMEOUT} s (cluster {cluster!r} still has {list(seen)}): "
                    "does its EDS config watch this file?"
                )
            await asyncio.sleep(_POLL)
