"""The local stack on loopback: Temporal dev server, a data plane (Envoy, HAProxy or nginx),
sample services, load, a worker.

Used by `make demo` and the end-to-end tests. Every process it starts, it stops by PID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from activities.routers import router_for
from deploy.envoy import Envoy
from deploy.fronts import EnvoyFront, Front, FrontKind, start_front
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
    processes: list[Process | Envoy | Front] = field(default_factory=list[Process | Envoy | Front])

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

    def front(self, kind: FrontKind, name: str, stable: Service) -> Front:
        """A data plane sending everything to `stable` (its canary arm at 0%)."""
        front = start_front(kind, self.state_dir / f"{kind}-{name}", self.log_dir, stable.address)
        self.processes.append(front)
        return front

    def load(self, url: str, rps: float) -> Process:
        return self._own(start_loadgen(url, rps, self.log_dir))

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
    """One service's routing: its own data plane (Envoy by default), a stable (v1) and a
    canary (v2) build, steady load."""

    def __init__(
        self,
        stack: LocalStack,
        name: str,
        rps: float = 300,
        error_rates: tuple[float, float] = (0.0, 0.0),
        front: FrontKind = "envoy",
    ) -> None:
        """`error_rates`: the share of requests the stable and the canary build answer 500."""
        self.name = name
        self.stable = stack.service("v1", error_rate=error_rates[0])
        self.canary = stack.service("v2", error_rate=error_rates[1])
        self.front = stack.front(front, name, self.stable)
        self.load = stack.load(self.front.url, rps)
        self.backups = stack.state_dir / "backups"

    @property
    def envoy(self) -> Envoy:
        """The site's Envoy, for tests that act on it directly."""
        assert isinstance(self.front, EnvoyFront), f"site {self.name} runs {self.front.kind}"
        return self.front.envoy

    def spec(
        self,
        *,
        service: str | None = None,
        stable: Service | None = None,
        canary: Service | None = None,
        **overrides: Any,
    ) -> DeploymentSpec:
        """A spec for this site (by default v1 → v2); checks need 10 canary requests."""
        analysis: dict[str, Any] = {"min_requests": 10, **overrides}
        return canary_spec(
            service or self.name,
            self.front,
            stable or self.stable,
            canary or self.canary,
            backup_dir=self.backups,
            **analysis,
        )

    async def router_state(self) -> RouterState:
        return await router_for(self.spec().router).read_state()

    def stop(self) -> None:
        """Stop the load, then the data plane (the stack stops the services)."""
        self.load.stop()
        self.front.stop()


def canary_spec(
    service: str,
    front: Front,
    stable: Service,
    canary: Service,
    *,
    stages: list[dict[str, Any]] | None = None,
    interval: timedelta = timedelta(seconds=1),
    guard: timedelta | None = None,
    backup_dir: Path,
    **analysis: Any,
) -> DeploymentSpec:
    """A deployment spec for the local stack, with stage times in seconds; the guard after
    100% lasts `guard` (default: three checks)."""
    return parse_spec(
        {
            "service": service,
            "stable": {"version": stable.version, "address": stable.address},
            "canary": {"version": canary.version, "address": canary.address},
            "router": front.router(),
            "analysis": {
                **front.analysis(stable.address, canary.address),
                "interval": interval,
                # Three checks of stable before any traffic moves, not the default minute.
                "baseline": interval * 3,
                **analysis,
            },
            "stages": stages
            or [
                {"name": "canary", "weight": 5, "bake": "PT4S"},
                {"name": "pilot", "weight": 25, "bake": "PT4S"},
                {"name": "gradual", "weight": 50, "bake": "PT4S"},
            ],
            "post_promotion": {"watch": interval * 3 if guard is None else guard},
            "backup": {"directory": str(backup_dir)},
        }
    )
