"""The rigs the breach-to-safety bench deploys on: one Envoy (deploy.stack.Site) or a fleet
of three Envoys in front of several instances of each version.

Both offer the same few things: a spec for a deployment, the canary instances to break,
the Envoy instances to watch, and a way to stop. Every process is owned by the
`LocalStack` passed in, so `LocalStack.close` stops it by PID even if a rig fails half-way.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from activities.routers import router_for
from bench import load_summary
from deploy.envoy import Envoy
from deploy.loadgen import start_loadgen
from deploy.processes import Process, free_port
from deploy.stack import LocalStack, Site
from sluicegate.contracts import RouterState
from sluicegate.spec import DeploymentSpec, EnvoyRouter, parse_spec


class Rig(Protocol):
    name: str

    @property
    def canary_ports(self) -> list[int]:
        """Ports of every canary (v2) instance: a bad build fails on all of them."""
        ...

    @property
    def instances(self) -> list[EnvoyRouter]:
        """Every Envoy the deployment steers; safety is all of them at 0% canary."""
        ...

    @property
    def stable_endpoints(self) -> tuple[str, ...]:
        """Where the old (v1) fleet listens."""
        ...

    def spec(
        self, service: str, stages: list[dict[str, Any]], interval: timedelta, guard: timedelta
    ) -> DeploymentSpec: ...

    async def at_rest(self) -> None:
        """Put every instance at the routing a run starts from."""
        ...

    def load_summaries(self) -> list[str]: ...

    def stop(self) -> None: ...


def with_guard(spec: DeploymentSpec, guard: timedelta) -> DeploymentSpec:
    """`spec` with `post_promotion.watch` set to `guard` (deploy.stack's specs keep the
    default)."""
    data = spec.model_dump(mode="json")
    data["post_promotion"] = {"watch": guard.total_seconds()}
    return parse_spec(data)


class SingleEnvoy:
    """deploy.stack.Site: one Envoy, one v1 and one v2 instance, 300 req/s through it."""

    def __init__(self, stack: LocalStack, name: str) -> None:
        self.name = name
        self.site = Site(stack, name)

    @property
    def canary_ports(self) -> list[int]:
        return [self.site.canary.port]

    @property
    def instances(self) -> list[EnvoyRouter]:
        router = self.site.spec().router
        assert isinstance(router, EnvoyRouter)
        return [router]

    @property
    def stable_endpoints(self) -> tuple[str, ...]:
        return (self.site.stable.address,)

    def spec(
        self, service: str, stages: list[dict[str, Any]], interval: timedelta, guard: timedelta
    ) -> DeploymentSpec:
        return with_guard(self.site.spec(service=service, stages=stages, interval=interval), guard)

    async def at_rest(self) -> None:
        """Started at rest (v1 on both clusters, 0%); each rollback puts it back there."""

    def load_summaries(self) -> list[str]:
        return [f"load {load_summary(self.site.load.tail(5))}"]

    def stop(self) -> None:
        self.site.stop()


class EnvoyFleet:
    """Three Envoys (`router.instances`), `per_version` instances each of v1 and v2
    (`stable.addresses`, `canary.addresses`), and steady load through every Envoy: most
    through edge-a, whose admin stats are the metric source, some through the others, as
    a load balancer in front of a fleet would not split evenly either."""

    NAMES = ("edge-a", "edge-b", "edge-c")

    def __init__(
        self,
        stack: LocalStack,
        name: str,
        per_version: int = 3,
        rps: tuple[float, ...] = (240, 30, 30),
    ) -> None:
        self.name = name
        self.stack = stack
        self.stable = [stack.service("v1") for _ in range(per_version)]
        self.canary = [stack.service("v2") for _ in range(per_version)]
        root = stack.state_dir / name
        self.envoys: list[Envoy] = []
        for edge in self.NAMES:
            envoy = Envoy(root / edge, free_port(), free_port(), stack.log_dir / name / edge)
            stack.processes.append(envoy)  # stopped by the stack, whatever happens next
            self.envoys.append(envoy)
            envoy.start(stable=self.stable[0].address, canary=self.stable[0].address)
        self.loads: list[Process] = []
        for edge, envoy, rate in zip(self.NAMES, self.envoys, rps, strict=True):
            load = start_loadgen(envoy.url, rate, stack.log_dir / name / f"load-{edge}")
            stack.processes.append(load)
            self.loads.append(load)
        self.backups = stack.state_dir / "backups"

    async def at_rest(self) -> None:
        """Every instance: 0% canary, both clusters at all of v1's instances (what a rollback
        restores, so each run starts from the same routing)."""
        rest = RouterState(
            canary_weight=0,
            stable_endpoints=self.stable_endpoints,
            canary_endpoints=self.stable_endpoints,
        )
        for instance in self.instances:
            await router_for(instance).apply(rest)

    @property
    def canary_ports(self) -> list[int]:
        return [each.port for each in self.canary]

    @property
    def instances(self) -> list[EnvoyRouter]:
        return [
            EnvoyRouter(
                name=edge, admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir)
            )
            for edge, envoy in zip(self.NAMES, self.envoys, strict=True)
        ]

    @property
    def stable_endpoints(self) -> tuple[str, ...]:
        return tuple(each.address for each in self.stable)

    def router(self) -> dict[str, Any]:
        return {
            "type": "envoy",
            "instances": [
                {
                    "name": edge,
                    "admin_url": envoy.admin_url,
                    "endpoints_dir": str(Path(envoy.endpoints_dir).resolve()),
                }
                for edge, envoy in zip(self.NAMES, self.envoys, strict=True)
            ],
        }

    def spec(
        self, service: str, stages: list[dict[str, Any]], interval: timedelta, guard: timedelta
    ) -> DeploymentSpec:
        return parse_spec(
            {
                "service": service,
                "stable": {"version": "v1", "addresses": list(self.stable_endpoints)},
                "canary": {"version": "v2", "addresses": [each.address for each in self.canary]},
                "router": self.router(),
                "analysis": {
                    # Real traffic, as edge-a's Envoy counts it for each cluster.
                    "source": {"type": "envoy", "admin_url": self.envoys[0].admin_url},
                    "interval": interval,
                    "baseline": interval * 3,
                    "min_requests": 10,
                },
                "stages": stages,
                "post_promotion": {"watch": guard.total_seconds()},
                "backup": {"directory": str(self.backups)},
            }
        )

    def load_summaries(self) -> list[str]:
        return [
            f"{edge} load {load_summary(load.tail(5))}"
            for edge, load in zip(self.NAMES, self.loads, strict=True)
        ]

    def stop(self) -> None:
        for load in self.loads:
            load.stop()
        for envoy in self.envoys:
            envoy.stop()
