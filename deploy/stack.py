"""The local stack on loopback: Temporal dev server, a data plane (Envoy, HAProxy or nginx),
sample services, load, a worker.

Used by `make demo` and the end-to-end tests. Every process it starts, it stops by PID.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from activities.routers import router_for
from deploy.envoy import Envoy
from deploy.fronts import EnvoyFront, Front, FrontKind, start_front
from deploy.loadgen import start_loadgen
from deploy.processes import Process, free_port, start_module
from deploy.sample_service import start_sample_service
from deploy.temporal_server import start_dev_server
from sluicegate.contracts import RouterState
from sluicegate.settings import CommandSetting
from sluicegate.spec import DeploymentSpec, parse_spec


class Deployable(Protocol):
    """A version and the endpoints of its instances: a `Service`, or a fleet of them."""

    @property
    def version(self) -> str: ...

    @property
    def addresses(self) -> tuple[str, ...]: ...


@dataclass
class Service:
    """One instance of one version, started by the stack."""

    version: str
    port: int
    process: Process

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address,)


@dataclass
class LocalStack:
    """Owns the processes it starts; `close` stops them all, newest first."""

    state_dir: Path
    processes: list[Process | Envoy | Front] = field(default_factory=list[Process | Envoy | Front])

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def evidence(self) -> Path:
        """The evidence store (SQLite) of this stack's workers."""
        return self.state_dir / "evidence.db"

    def temporal(self, port: int | None = None, ui_port: int | None = None) -> tuple[str, int]:
        """Start the dev server; returns its address and Web UI port."""
        port, ui_port = port or free_port(), ui_port or free_port()
        self._own(start_dev_server(self.state_dir, port, ui_port, self.log_dir))
        return f"127.0.0.1:{port}", ui_port

    def service(self, version: str, error_rate: float = 0.0, delay_ms: float = 0) -> Service:
        port = free_port()
        process = start_sample_service(version, port, self.log_dir, error_rate, delay_ms)
        return Service(version, port, self._own(process))

    def front(self, kind: FrontKind, name: str, stable: Deployable, slots: int = 1) -> Front:
        """A data plane sending everything to `stable` (its canary arm at 0%); for HAProxy,
        `slots` servers per arm (the most instances a version will have)."""
        directory = self.state_dir / f"{kind}-{name}"
        front = start_front(kind, directory, self.log_dir, stable.addresses, slots)
        self.processes.append(front)
        return front

    def load(self, url: str, rps: float) -> Process:
        return self._own(start_loadgen(url, rps, self.log_dir))

    def worker(
        self,
        temporal_address: str,
        task_queue: str,
        commands: Mapping[str, CommandSetting] | None = None,
        metrics_address: str | None = None,
    ) -> Process:
        """A worker; `commands` are what its command hooks may run (SLUICEGATE_COMMANDS);
        with `metrics_address`, it serves Prometheus metrics there."""
        env = {
            "SLUICEGATE_TEMPORAL_ADDRESS": temporal_address,
            "SLUICEGATE_TASK_QUEUE": task_queue,
            "SLUICEGATE_EVIDENCE_URL": str(self.evidence),
        }
        if metrics_address:
            env["SLUICEGATE_METRICS_ADDRESS"] = metrics_address
        if commands:
            declared = {name: setting.model_dump(mode="json") for name, setting in commands.items()}
            env["SLUICEGATE_COMMANDS"] = json.dumps(declared)
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
    stable: Deployable,
    canary: Deployable,
    *,
    stages: list[dict[str, Any]] | None = None,
    interval: timedelta = timedelta(seconds=1),
    guard: timedelta | None = None,
    backup_dir: Path,
    top_level: Mapping[str, Any] | None = None,
    **analysis: Any,
) -> DeploymentSpec:
    """A deployment spec for the local stack, with stage times in seconds and a guard at
    100% of `guard` (default three checks, not the default half hour); `top_level` adds or
    replaces spec fields such as `hooks`, `smoke` or `post_promotion`, `analysis` its
    fields."""
    return parse_spec(
        {
            "post_promotion": {"watch": interval * 3 if guard is None else guard},
            **(top_level or {}),
            "service": service,
            "stable": _version(stable),
            "canary": _version(canary),
            "router": front.router(),
            "analysis": {
                # A probe of the first instance of each version (nginx) stands for all.
                **front.analysis(stable.addresses[0], canary.addresses[0]),
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
            "backup": {"directory": str(backup_dir)},
        }
    )


def _version(deployable: Deployable) -> dict[str, Any]:
    """The spec's `stable` or `canary`: `address` for one instance, else `addresses`."""
    if len(deployable.addresses) == 1:
        return {"version": deployable.version, "address": deployable.addresses[0]}
    return {"version": deployable.version, "addresses": list(deployable.addresses)}
