"""The local stack on loopback: Temporal dev server, Envoy, sample services, load, a worker.

Used by `make demo` and the end-to-end tests. Every process it starts, it stops by PID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from activities.routers import router_for
from deploy.envoy import Envoy
from deploy.loadgen import start_loadgen
from deploy.processes import Process, free_port, start_module
from deploy.sample_service import start_sample_service
from deploy.temporal_server import start_dev_server
from sluicegate.contracts import RouterState
from sluicegate.spec import DeploymentSpec, parse_spec


@dataclass
class Service:
    version: str
    port: int
    process: Process

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class LocalStack:
    """Owns the processes it starts; `close` stops them all, newest first."""

    state_dir: Path
    processes: list[Process | Envoy] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def temporal(self, port: int | None = None, ui_port: int | None = None) -> tuple[str, int]:
        """Start the dev server; returns its address and Web UI port."""
        port, ui_port = port or free_port(), ui_port or free_port()
        self._own(start_dev_server(self.state_dir, port, ui_port, self.log_dir))
        return f"127.0.0.1:{port}", ui_port

    def service(self, version: str, error_rate: float = 0.0, delay_ms: float = 0) -> Service:
        port = free_port()
        process = start_sample_service(version, port, self.log_dir, error_rate, delay_ms)
        return Service(version, port, self._own(process))

    def envoy(self, name: str, stable: Service) -> Envoy:
        envoy = Envoy(self.state_dir / f"envoy-{name}", free_port(), free_port(), self.log_dir)
        envoy.start(stable=stable.address, canary=stable.address)
        self.processes.append(envoy)
        return envoy

    def load(self, envoy: Envoy, rps: float) -> Process:
        return self._own(start_loadgen(envoy.url, rps, self.log_dir))

    def worker(self, temporal_address: str, task_queue: str) -> Process:
        env = {"SLUICEGATE_TEMPORAL_ADDRESS": temporal_address, "SLUICEGATE_TASK_QUEUE": task_queue}
        return self._own(start_module("worker", "workers.main", [], self.log_dir, env))

    def close(self) -> None:
        for process in reversed(self.processes):  # load stops before Envoy, Envoy before services
            process.stop()

    def _own(self, process: Process) -> Process:
        self.processes.append(process)
        return process


class Site:
    """One service's routing: its own Envoy, a stable (v1) and a canary (v2) build, steady load."""

    def __init__(
        self,
        stack: LocalStack,
        name: str,
        rps: float = 300,
        error_rates: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """`error_rates`: the share of requests the stable and the canary build answer 500."""
        self.name = name
        self.stable = stack.service("v1", error_rate=error_rates[0])
        self.canary = stack.service("v2", error_rate=error_rates[1])
        self.envoy = stack.envoy(name, self.stable)
        self.load = stack.load(self.envoy, rps)
        self.backups = stack.state_dir / "backups"

    def spec(
        self,
        *,
        service: str | None = None,
        stable: Service | None = None,
        canary: Service | None = None,
        **overrides: Any,
    ) -> DeploymentSpec:
        """A spec for this site (by default v1 → v2); checks need 10 canary requests."""
        return canary_spec(
            service or self.name,
            self.envoy,
            stable or self.stable,
            canary or self.canary,
            backup_dir=self.backups,
            **{"min_requests": 10, **overrides},
        )

    async def router_state(self) -> RouterState:
        return await router_for(self.spec().router).read_state()

    def stop(self) -> None:
        """Stop the load, then Envoy (the stack stops the services)."""
        self.load.stop()
        self.envoy.stop()


def canary_spec(
    service: str,
    envoy: Envoy,
    stable: Service,
    canary: Service,
    *,
    stages: list[dict[str, Any]] | None = None,
    interval: timedelta = timedelta(seconds=1),
    backup_dir: Path,
    **analysis: Any,
) -> DeploymentSpec:
    """A deployment spec for the local stack, with stage times in seconds."""
    return parse_spec(
        {
            "service": service,
            "stable": {"version": stable.version, "address": stable.address},
            "canary": {"version": canary.version, "address": canary.address},
            "router": {
                "type": "envoy",
                "admin_url": envoy.admin_url,
                "endpoints_dir": str(envoy.endpoints_dir.resolve()),
            },
            "analysis": {
                "source": {"type": "envoy", "admin_url": envoy.admin_url},
                "interval": interval,
                **analysis,
            },
            "stages": stages
            or [
                {"name": "canary", "weight": 5, "bake": "PT4S"},
                {"name": "pilot", "weight": 25, "bake": "PT4S"},
                {"name": "gradual", "weight": 50, "bake": "PT4S"},
            ],
            "backup": {"directory": str(backup_dir)},
        }
    )
