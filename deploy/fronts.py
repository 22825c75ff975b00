"""The data plane in front of a local site's two builds: Envoy, HAProxy or nginx.

Each front knows how a spec names its router and which metric source (and health rules)
suit it on this machine, so the demo and the end-to-end tests run the same deployments
through any of them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from deploy.envoy import Envoy
from deploy.haproxy import BACKEND, HAProxy
from deploy.nginx import Nginx
from deploy.processes import free_port
from deploy.prometheus import Prometheus, prometheus_binary

FrontKind = Literal["envoy", "haproxy", "nginx"]
FRONTS: tuple[FrontKind, ...] = ("envoy", "haproxy", "nginx")
# Without latency histograms (HAProxy), health is judged on errors alone.
ERRORS_ONLY = [
    {"metric": "error_rate", "max": 0.01},
    {"metric": "availability", "min": 0.999, "window": "stage"},
]


class Front(Protocol):
    kind: FrontKind

    @property
    def url(self) -> str: ...

    def router(self) -> dict[str, Any]:
        """The spec's `router`."""
        ...

    def analysis(self, stable: str, canary: str) -> dict[str, Any]:
        """The spec's `analysis` fields that depend on the front (source, maybe metrics)."""
        ...

    def stop(self) -> None: ...


class EnvoyFront:
    kind: FrontKind = "envoy"

    def __init__(self, directory: Path, log_dir: Path, stable: str | Sequence[str]) -> None:
        self.envoy = Envoy(directory, free_port(), free_port(), log_dir)
        self.envoy.start(stable=stable, canary=stable)

    @property
    def url(self) -> str:
        return self.envoy.url

    def router(self) -> dict[str, Any]:
        return {
            "type": "envoy",
            "admin_url": self.envoy.admin_url,
            "endpoints_dir": str(self.envoy.endpoints_dir.resolve()),
        }

    def analysis(self, stable: str, canary: str) -> dict[str, Any]:
        return {"source": {"type": "envoy", "admin_url": self.envoy.admin_url}}

    def stop(self) -> None:
        self.envoy.stop()


class HAProxyFront:
    """HAProxy through its runtime API; metrics from its exporter, through Prometheus when
    it is installed (as most sites run it), else read directly."""

    kind: FrontKind = "haproxy"

    def __init__(
        self, directory: Path, log_dir: Path, stable: str | Sequence[str], slots: int = 1
    ) -> None:
        """`slots`: server slots per arm, the most endpoints a version will have."""
        # A unix socket path must stay short: not under a deep state directory.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="sluice-haproxy-"))
        self.haproxy = HAProxy(
            directory=directory,
            socket_dir=self.socket_dir,
            listen_port=free_port(),
            metrics_port=free_port(),
            log_dir=log_dir,
            slots=slots,
        )
        self.prometheus: Prometheus | None = None
        try:
            self.haproxy.start(stable=stable, canary=stable)
            if prometheus_binary() is not None:
                self.prometheus = Prometheus(directory / "prometheus", log_dir)
                exporter = f"127.0.0.1:{self.haproxy.metrics_port}"
                self.prometheus.start({"haproxy": (exporter, "/metrics")})
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return self.haproxy.url

    def router(self) -> dict[str, Any]:
        return {"type": "haproxy", "runtime_api": str(self.haproxy.socket), "backend": BACKEND}

    def analysis(self, stable: str, canary: str) -> dict[str, Any]:
        if self.prometheus is None:
            exporter = self.haproxy.metrics_url
            source = {"type": "haproxy", "metrics_url": exporter, "backend": BACKEND}
            return {"source": source, "metrics": ERRORS_ONLY}
        # As the haproxy source counts: answers of every class, plus the requests HAProxy
        # answered itself because the server refused or broke the connection. An arm is
        # its server (`stable`) or its slots (`stable1`, `stable2`, ...).
        server = f'{{proxy="{BACKEND}",server=~"$arm[0-9]*"}}'
        failed = f"haproxy_server_connection_errors_total{server}"
        failed += f" + haproxy_server_response_errors_total{server}"
        answered_5xx = (
            f'haproxy_server_http_responses_total{{proxy="{BACKEND}",server=~"$arm[0-9]*",'
            'code="5xx"}'
        )
        source = {
            "type": "prometheus",
            "url": self.prometheus.url,
            "requests": f"sum(haproxy_server_http_responses_total{server}) + sum({failed})",
            "errors": f"sum({answered_5xx}) + sum({failed})",
        }
        return {"source": source, "metrics": ERRORS_ONLY}

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        self.haproxy.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


class NginxFront:
    """nginx with its owned upstream file; open-source nginx counts nothing per upstream,
    so health comes from HTTP probes of the two builds."""

    kind: FrontKind = "nginx"

    def __init__(self, directory: Path, log_dir: Path, stable: str | Sequence[str]) -> None:
        self.nginx = Nginx(directory, free_port(), log_dir)
        self.nginx.start(stable=stable, canary=stable)

    @property
    def url(self) -> str:
        return self.nginx.url

    def router(self) -> dict[str, Any]:
        return {
            "type": "nginx",
            "upstream_file": str(self.nginx.upstream_file.resolve()),
            "upstream": self.nginx.upstream,
            "main_config": str(self.nginx.main_config.resolve()),
        }

    def analysis(self, stable: str, canary: str) -> dict[str, Any]:
        source = {
            "type": "http_probe",
            "stable_url": f"http://{stable}/",
            "canary_url": f"http://{canary}/",
        }
        return {"source": source}

    def stop(self) -> None:
        self.nginx.stop()


def start_front(
    kind: FrontKind,
    directory: Path,
    log_dir: Path,
    stable: str | Sequence[str],
    slots: int = 1,
) -> Front:
    """Start `kind` in front of `stable`'s endpoints (the canary arm points there too, at
    0%). HAProxy gets `slots` server slots per arm: the most endpoints a version will have."""
    if kind == "haproxy":
        return HAProxyFront(directory, log_dir, stable, slots)
    fronts = {"envoy": EnvoyFront, "nginx": NginxFront}
    return fronts[kind](directory, log_dir, stable)
