"""Router fleets on real Envoys: every shift goes to all instances and is verified on
each; an instance whose admin API is cut mid-release rolls all back; an instance on
another worker's host is kept at its routing by that worker; promotion leaves every
instance serving the canary's whole set of endpoints."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from activities.routers import router_for
from bench.scripted import spec_data
from deploy.haproxy import BACKEND, HAProxy, haproxy_binary
from deploy.processes import free_port
from frontends.client.deployments import query_status, start_deployment
from frontends.client.history import ServiceRouting
from frontends.client.operations import ControlRefused, one_router
from sluicegate.contracts import DeploymentResult, PromoteInput, RouterState
from sluicegate.settings import Settings
from sluicegate.spec import DeploymentSpec, EnvoyRouter, HAProxyRouter, parse_spec
from tests.envoy_fixtures import EnvoyStack, Upstream
from tests.tcp_relay import Relay
from tests.traffic import send_gets
from tests.waiting import eventually
from workers.client import connect
from workers.main import build_worker
from workflows.canary import CanaryDeployment

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "fleets"
EDGE_QUEUE = "fleets-edge-c"  # the worker "on the host" of instance edge-c
ERRORS_ONLY = [{"metric": "error_rate", "max": 0.01}]


def fleet_spec(
    service: str,
    router: dict[str, Any],
    stable: list[Upstream],
    canary: list[Upstream],
    stages: list[dict[str, Any]],
    backups: Path,
) -> DeploymentSpec:
    """A spec for versions of three endpoints each, judged by probing one of each."""
    return parse_spec(
        {
            "service": service,
            "stable": {"version": "v1", "addresses": [each.address for each in stable]},
            "canary": {"version": "v2", "addresses": [each.address for each in canary]},
            "router": router,
            "analysis": {
                "source": {
                    "type": "http_probe",
                    "stable_url": f"http://{stable[0].address}/",
                    "canary_url": f"http://{canary[0].address}/",
                },
                "metrics": ERRORS_ONLY,
                "interval": "PT1S",
                "baseline": "PT0S",
                "min_requests": 10,
            },
            "stages": stages,
            "post_promotion": {"watch": "PT3S"},
            "backup": {"directory": str(backups)},
        }
    )


class Fleet:
    """Three Envoys, each behind a relay for its admin API, and 3 + 3 upstreams."""

    def __init__(self, root: Path) -> None:
        self.stable = [Upstream(f"v1-{n}") for n in range(3)]
        self.canary = [Upstream(f"v2-{n}") for n in range(3)]
        self.envoys: list[EnvoyStack] = []
        self.relays: list[Relay] = []
        for name in ("a", "b", "c"):
            envoy = EnvoyStack(root / name, free_port(), free_port(), root / "logs")
            self.envoys.append(envoy)
            envoy.start(stable=self.stable[0].address, canary=self.stable[0].address)
            self.relays.append(Relay(envoy.admin_url.removeprefix("http://")))

    @property
    def stable_endpoints(self) -> tuple[str, ...]:
        return tuple(each.address for each in self.stable)

    @property
    def canary_endpoints(self) -> tuple[str, ...]:
        return tuple(each.address for each in self.canary)

    def router(self) -> dict[str, Any]:
        return {
            "type": "envoy",
            "instances": [
                {
                    "name": f"edge-{name}",
                    "admin_url": f"http://{relay.address}",
                    "endpoints_dir": str(envoy.endpoints_dir.resolve()),
                    **({"task_queue": EDGE_QUEUE} if name == "c" else {}),
                }
                for name, envoy, relay in zip("abc", self.envoys, self.relays, strict=True)
            ],
        }

    def instance(self, index: int) -> EnvoyRouter:
        envoy = self.envoys[index]
        return EnvoyRouter(admin_url=envoy.admin_url, endpoints_dir=str(envoy.endpoints_dir))

    async def state(self, index: int) -> RouterState:
        return await router_for(self.instance(index)).read_state()

    async def at_rest(self) -> None:
        """Every instance: 0% canary, stable at v1's three endpoints."""
        rest = RouterState(
            canary_weight=0,
            stable_endpoints=self.stable_endpoints,
            canary_endpoints=self.stable_endpoints,
        )
        for index in range(3):
            await router_for(self.instance(index)).apply(rest)

    def spec(self, service: str, stages: list[dict[str, Any]], backups: Path) -> DeploymentSpec:
        return fleet_spec(service, self.router(), self.stable, self.canary, stages, backups)

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
        for envoy in self.envoys:
            envoy.stop()
        for upstream in [*self.stable, *self.canary]:
            upstream.close()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="module")
async def client(dev_server: str) -> AsyncIterator[Client]:
    client = await connect(Settings(temporal_address=dev_server))
    async with build_worker(client, TASK_QUEUE), build_worker(client, EDGE_QUEUE):
        yield client


GATED = [
    {"name": "canary", "weight": 10, "manual_gate": True},
    {"name": "half", "weight": 50, "bake": "PT2S"},
]


async def at_gate(handle: WorkflowHandle[Any, Any]) -> None:
    async def waiting() -> bool:
        return (await query_status(handle)).phase == "awaiting_approval"

    await eventually(waiting, "the deployment waits at its gate", attempts=1200)


async def test_a_fleet_is_promoted_and_every_instance_serves_the_canary_fleet(
    client: Client, fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.at_rest()
    spec = fleet.spec("fleet-promoted", GATED, tmp_path / "backups")
    handle = await start_deployment(client, spec, TASK_QUEUE)
    await at_gate(handle)
    for index in range(3):
        state = await fleet.state(index)
        assert state.canary_weight == 10
        assert sorted(state.canary_endpoints) == sorted(fleet.canary_endpoints)
    # Drift on the instance another worker keeps: that worker puts it back.
    fleet.envoys[2].set_weight(0)

    async def repaired() -> bool:
        return (await fleet.state(2)).canary_weight == 10

    await eventually(repaired, "edge-c's drift re-applied by its host's worker", attempts=1200)
    await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t", full=True))
    result: DeploymentResult = await handle.result()
    assert result.outcome == "promoted", result.reason
    for index, envoy in enumerate(fleet.envoys):
        state = await fleet.state(index)
        assert state.canary_weight == 0
        assert sorted(state.stable_endpoints) == sorted(fleet.canary_endpoints)
        served = await send_gets(envoy.url, 30)
        assert set(served) <= {f"200 v2-{n}" for n in range(3)}, served
        assert len(served) == 3, f"edge {index} does not spread over all three: {served}"


async def test_an_instance_cut_mid_release_rolls_every_instance_back(
    client: Client, fleet: Fleet, tmp_path: Path
) -> None:
    await fleet.at_rest()
    spec = fleet.spec("fleet-cut", GATED, tmp_path / "backups")
    handle = await start_deployment(client, spec, TASK_QUEUE)
    await at_gate(handle)
    fleet.relays[1].cut()  # edge-b's admin API: Envoy itself keeps serving
    await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t"))

    async def others_back() -> bool:
        status = await query_status(handle)
        states = [await fleet.state(index) for index in (0, 2)]
        return status.phase == "failed" and all(s.canary_weight == 0 for s in states)

    # edge-b never took 50%: the others are put back while its restore keeps retrying.
    await eventually(others_back, "edge-a and edge-c restored, edge-b retrying", attempts=4000)
    status = await query_status(handle)
    assert status.reason is not None and "edge-b" in status.reason
    fleet.relays[1].heal()
    result: DeploymentResult = await handle.result()
    assert result.outcome == "rolled_back"
    assert "router edge-b could not be set" in result.reason
    for index in range(3):
        state = await fleet.state(index)
        assert state.canary_weight == 0
        assert sorted(state.stable_endpoints) == sorted(fleet.stable_endpoints)
    counted: Counter[str] = await send_gets(fleet.envoys[1].url, 20)
    assert set(counted) <= {f"200 v1-{n}" for n in range(3)}, counted


class HAProxyFleet:
    """Two HAProxys with three server slots per arm, each runtime API behind a relay."""

    def __init__(self, root: Path, socket_root: Path) -> None:
        self.stable = [Upstream(f"v1-{n}") for n in range(3)]
        self.canary = [Upstream(f"v2-{n}") for n in range(3)]
        endpoints = [each.address for each in self.stable]
        self.haproxys: list[HAProxy] = []
        self.relays: list[Relay] = []
        for n in range(2):
            (socket_root / str(n)).mkdir()
            haproxy = HAProxy(
                directory=root / f"haproxy-{n}",
                socket_dir=socket_root / str(n),
                listen_port=free_port(),
                metrics_port=free_port(),
                log_dir=root / "logs",
                runtime_port=free_port(),
                slots=3,
            )
            self.haproxys.append(haproxy)
            haproxy.start(stable=endpoints, canary=endpoints)
            self.relays.append(Relay(haproxy.tcp_runtime_api))

    def router(self) -> dict[str, Any]:
        return {
            "type": "haproxy",
            "backend": BACKEND,
            "instances": [
                {"name": f"lb-{n}", "runtime_api": relay.address}
                for n, relay in enumerate(self.relays)
            ],
        }

    async def state(self, index: int) -> RouterState:
        spec = HAProxyRouter(runtime_api=str(self.haproxys[index].socket), backend=BACKEND)
        return await router_for(spec).read_state()

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
        for haproxy in self.haproxys:
            haproxy.stop()
        for upstream in [*self.stable, *self.canary]:
            upstream.close()


@pytest.fixture
def haproxy_fleet(tmp_path: Path) -> Iterator[HAProxyFleet]:
    if haproxy_binary() is None:
        pytest.skip("haproxy is not installed: apt-get install -y haproxy")
    socket_root = Path(tempfile.mkdtemp(prefix="sg-fleet-"))  # unix socket paths are short
    fleet = HAProxyFleet(tmp_path, socket_root)
    try:
        yield fleet
    finally:
        fleet.close()
        shutil.rmtree(socket_root, ignore_errors=True)


async def test_an_haproxy_fleet_cut_mid_release_rolls_both_back(
    client: Client, haproxy_fleet: HAProxyFleet, tmp_path: Path
) -> None:
    fleet = haproxy_fleet
    spec = fleet_spec(
        "haproxy-fleet", fleet.router(), fleet.stable, fleet.canary, GATED, tmp_path / "b"
    )
    handle = await start_deployment(client, spec, TASK_QUEUE)
    await at_gate(handle)
    for index in range(2):
        state = await fleet.state(index)
        assert state.canary_weight == 10
        assert sorted(state.canary_endpoints) == sorted(spec.canary.endpoints)
    fleet.relays[1].cut()  # lb-1's runtime API; HAProxy itself keeps serving
    await handle.execute_update(CanaryDeployment.promote_update, PromoteInput(by="t"))

    async def lb0_back() -> bool:
        status = await query_status(handle)
        return status.phase == "failed" and (await fleet.state(0)).canary_weight == 0

    await eventually(lb0_back, "lb-0 restored while lb-1's restore retries", attempts=4000)
    fleet.relays[1].heal()
    result: DeploymentResult = await handle.result()
    assert result.outcome == "rolled_back"
    assert "router lb-1 could not be set" in result.reason
    for index in range(2):
        state = await fleet.state(index)
        assert state.canary_weight == 0
        assert sorted(state.stable_endpoints) == sorted(spec.stable.endpoints)


def test_sluice_restore_refuses_a_fleet_naming_its_instances() -> None:
    router = {
        "type": "haproxy",
        "backend": "web",
        "instances": [
            {"name": "lb-0", "runtime_api": "127.0.0.1:1"},
            {"name": "lb-1", "runtime_api": "127.0.0.1:2"},
        ],
    }
    spec = parse_spec({**spec_data("refused-fleet"), "router": router})
    routing = ServiceRouting(router=spec.router, backup=spec.backup, source="the spec file")
    with pytest.raises(ControlRefused, match=r"the spec file names a router fleet \(lb-0, lb-1\)"):
        one_router(routing)
