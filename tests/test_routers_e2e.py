"""One deployment pair per data plane on the real stack: a healthy canary promoted and a
faulty one rolled back, through HAProxy (metrics via Prometheus when installed) and nginx
(health from HTTP probes). Envoy's are in test_e2e.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from deploy.haproxy import haproxy_binary
from deploy.nginx import nginx_binary
from deploy.stack import LocalStack, Site
from sluicegate.contracts import RouterState
from sluicegate.deployments import start_deployment
from sluicegate.settings import Settings
from workers.client import connect
from workers.main import build_worker

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "routers-e2e"
STAGES = [
    {"name": "canary", "weight": 10, "bake": "PT3S"},
    {"name": "half", "weight": 50, "bake": "PT3S"},
]
INSTALLED = {"haproxy": haproxy_binary(), "nginx": nginx_binary()}
FRONTS = [
    pytest.param(
        kind,
        marks=pytest.mark.skipif(
            INSTALLED[kind] is None,
            reason=f"{kind} is not installed: apt-get install -y {kind}"
            f"{'-light' if kind == 'nginx' else ''} (or run `make test` as root)",
        ),
    )
    for kind in INSTALLED
]


@pytest.fixture(scope="module")
async def client(dev_server: str) -> AsyncIterator[Client]:
    client = await connect(Settings(temporal_address=dev_server))
    async with build_worker(client, TASK_QUEUE):
        yield client


@pytest.mark.parametrize("front", FRONTS)
async def test_a_healthy_canary_is_promoted(stack: LocalStack, client: Client, front: str) -> None:
    site = Site(stack, f"healthy-{front}", front=front)  # type: ignore[arg-type]
    try:
        spec = site.spec(stages=STAGES, failed_checks_tolerated=1)
        result = await (await start_deployment(client, spec, TASK_QUEUE)).result()
        state = await site.router_state()
    finally:
        site.stop()
    assert result.outcome == "promoted", result.reason
    assert state.canary_weight == 0 and state.stable_endpoints == (site.canary.address,)


@pytest.mark.parametrize("front", FRONTS)
async def test_a_faulty_canary_is_rolled_back(
    stack: LocalStack, client: Client, front: str
) -> None:
    site = Site(stack, f"faulty-{front}", error_rates=(0.0, 0.3), front=front)  # type: ignore[arg-type]
    try:
        stages = [{"name": "canary", "weight": 20, "bake": "PT10M"}]
        result = await (
            await start_deployment(client, site.spec(stages=stages), TASK_QUEUE)
        ).result()
        state = await site.router_state()
    finally:
        site.stop()
    assert result.outcome == "rolled_back", result.reason
    assert "error" in result.reason  # the failing numbers: error_rate or the errors comparison
    assert state == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )
