"""Envoy for tests and the demo: write a bootstrap that Sluicegate can steer, start and stop it.

The bootstrap splits traffic with a runtime fraction (weight set through the admin
runtime layer) and reads each cluster's endpoints from an EDS file, so Sluicegate
changes weights and upstream addresses without restarting Envoy. See docs/routers/envoy.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from activities.routers.envoy import DEFAULT_RUNTIME_KEY, write_endpoints
from deploy.processes import (
    PortTaken,
    Process,
    free_port,
    port_open,
    start,
    venv_binary,
    wait_until,
)

# Fine buckets (ms) for the per-cluster request-time histograms, so p99 is judged
# against bounds like 200 ms without coarse interpolation.
LATENCY_BUCKETS_MS = (
    1, 2, 5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 5000, 10000,
)  # fmt: skip
CONNECT_TIMEOUT = "0.25s"  # a dead upstream turns into a quick 503
PORT_ATTEMPTS = 3  # free ports chosen in turn when another process takes one first
_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def write_bootstrap(
    dir: Path,
    listen_port: int,
    admin_port: int,
    stable: str | Sequence[str],
    canary: str | Sequence[str],
    runtime_key: str = DEFAULT_RUNTIME_KEY,
) -> Path:
    """Write `dir/envoy.yaml` and the EDS files `dir/endpoints/{stable,canary}.yaml`
    (each arm one endpoint, or several)."""
    endpoints = dir / "endpoints"
    endpoints.mkdir(parents=True, exist_ok=True)
    write_endpoints(endpoints / "stable.yaml", "stable", _listed(stable))
    write_endpoints(endpoints / "canary.yaml", "canary", _listed(canary))
    config = bootstrap(listen_port, admin_port, endpoints.resolve(), runtime_key)
    path = dir / "envoy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _listed(endpoints: str | Sequence[str]) -> list[str]:
    return [endpoints] if isinstance(endpoints, str) else list(endpoints)


def bootstrap(
    listen_port: int, admin_port: int, endpoints_dir: Path, runtime_key: str
) -> dict[str, Any]:
    """The bootstrap as a dict: one listener, a runtime-weighted route, two EDS clusters."""
    return {
        "node": {"id": f"sluicegate-{admin_port}", "cluster": "sluicegate"},  # EDS needs both
        "admin": {"address": _socket("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [_listener(listen_port, runtime_key)],
            "clusters": [_eds_cluster(name, endpoints_dir) for name in ("stable", "canary")],
        },
        # Weight changes go to the admin layer (POST /runtime_modify); lost on restart.
        "layered_runtime": {
            "layers": [
                {"name": "static", "static_layer": {}},
                {"name": "admin", "admin_layer": {}},
            ]
        },
        # Every admin /stats read starts a flush (histogram merge) instead of a 5 s timer;
        # the merge lands just after that response, so readers prime with one extra read.
        "stats_flush_on_admin": True,
        "stats_config": {
            "histogram_bucket_settings": [
                {
                    "match": {"safe_regex": {"regex": r"^cluster\..*upstream_rq_time$"}},
                    "buckets": list(LATENCY_BUCKETS_MS),
                }
            ]
        },
    }


def _listener(port: int, runtime_key: str) -> dict[str, Any]:
    """HTTP on 127.0.0.1:port: `runtime_key`% (default 0) to canary, the rest to stable."""
    no_retries = {"num_retries": 0}
    routes = [
        {
            "match": {
                "prefix": "/",
                "runtime_fraction": {
                    "default_value": {"numerator": 0, "denominator": "HUNDRED"},
                    "runtime_key": runtime_key,
                },
            },
            "route": {"cluster": "canary", "retry_policy": no_retries},
        },
        {"match": {"prefix": "/"}, "route": {"cluster": "stable", "retry_policy": no_retries}},
    ]
    manager = {
        "@type": _HCM,
        "stat_prefix": "ingress",
        "route_config": {
            "name": "sluicegate",
            "virtual_hosts": [{"name": "service", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    return {
        "name": "ingress",
        "address": _socket("127.0.0.1", port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _eds_cluster(name: str, endpoints_dir: Path) -> dict[str, Any]:
    return {
        "name": name,
        "type": "EDS",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "eds_cluster_config": {
            "eds_config": {
                "resource_api_version": "V3",
                "path_config_source": {"path": str(endpoints_dir / f"{name}.yaml")},
            }
        },
    }


def _socket(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def start_envoy(dir: Path, listen_port: int, admin_port: int, log_dir: Path) -> Process:
    """Start Envoy on `dir/envoy.yaml` and wait until its admin /ready says LIVE.

    `listen_port` must be the one the bootstrap was written with; it is checked too.
    """
    argv = [
        venv_binary("envoy"),
        "-c",
        str(dir / "envoy.yaml"),
        "--disable-hot-restart",  # two Envoys on one machine would clash otherwise
        "--base-id",
        str(admin_port),  # unique per running Envoy, as its admin port is
        "--log-level",
        "warning",
    ]
    process = start(f"envoy-{admin_port}", argv, log_dir)
    try:
        wait_until(_live(f"http://127.0.0.1:{admin_port}/ready"), process, timeout=30)
        wait_until(port_open(listen_port), process, timeout=5)
    except BaseException:
        process.stop()
        raise
    return process


def _live(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).text.strip() == "LIVE"
        except httpx.HTTPError:
            return False

    return check


@dataclass
class Envoy:
    """One Envoy and its config directory; `restart` loses the admin runtime, as a crash does."""

    directory: Path
    listen_port: int
    admin_port: int
    log_dir: Path
    process: Process | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}/"

    @property
    def endpoints_dir(self) -> Path:
        return self.directory / "endpoints"

    def start(self, stable: str | Sequence[str], canary: str | Sequence[str]) -> None:
        """Write the bootstrap (stable and canary upstreams, 0% canary) and start Envoy; on
        other free ports if another process took one of these meanwhile."""
        for attempt in range(PORT_ATTEMPTS):
            write_bootstrap(self.directory, self.listen_port, self.admin_port, stable, canary)
            try:
                self.process = start_envoy(
                    self.directory, self.listen_port, self.admin_port, self.log_dir
                )
                return
            except PortTaken:
                if attempt == PORT_ATTEMPTS - 1:
                    raise
                self.listen_port, self.admin_port = free_port(), free_port()

    def restart(self) -> None:
        self.stop()
        self.process = start_envoy(self.directory, self.listen_port, self.admin_port, self.log_dir)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
