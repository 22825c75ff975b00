"""One deployment pair per data plane on the real stack: a healthy canary promoted and a
faulty one rolled back, through HAProxy (metrics via Prometheus when installed) and nginx
(health from HTTP probes), and a platform behind the webhook contract. Envoy's are in
test_e2e.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import Client

from activities.http import close_shared_client
from activities.routers import router_for
from deploy.haproxy import haproxy_binary
from deploy.nginx import nginx_binary
from deploy.stack import LocalStack, Site
from frontends.client.deployments import start_deployment
from sluicegate.contracts import RouterState
from sluicegate.settings import Settings
from sluicegate.spec import DeploymentSpec, WebhookRouter
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


def lenient_latency(spec: DeploymentSpec) -> DeploymentSpec:
    """`spec` with its latency limits at 2 s."""
    metrics = tuple(
        rule.model_copy(update={"max": 2000}) if rule.metric.startswith("latency") else rule
        for rule in spec.analysis.metrics
    )
    analysis = spec.analysis.model_copy(update={"metrics": metrics})
    return spec.model_copy(update={"analysis": analysis})


@pytest.mark.parametrize("front", FRONTS)
async def test_a_healthy_canary_is_promoted(stack: LocalStack, client: Client, front: str) -> None:
    site = Site(stack, f"healthy-{front}", front=front)  # type: ignore[arg-type]
    try:
        # Routing is under test, not this machine's speed: on a loaded CI box both versions
        # answer slower than 200 ms alike, which the stable guard rightly rolls back.
        spec = lenient_latency(site.spec(stages=STAGES, failed_checks_tolerated=1))
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
    # The failing numbers: error_rate, availability or the errors comparison, with counts.
    assert any(rule in result.reason for rule in ("error_rate", "availability", "errors"))
    assert "canary requests failed" in result.reason or "errors: canary" in result.reason
    assert state == RouterState(
        canary_weight=0,
        stable_endpoints=(site.stable.address,),
        canary_endpoints=(site.stable.address,),
    )


def _run(work: Coroutine[Any, Any, RouterState]) -> RouterState:
    """`work` on an event loop of its own, closing that loop's connection pool after."""

    async def once() -> RouterState:
        try:
            return await work
        finally:
            await close_shared_client()

    return asyncio.run(once())


class EnvoyPlatform:
    """A platform behind the webhook contract: GET reads and POST applies routing on a
    site's Envoy, through the Envoy router, as a real platform would on its own plane."""

    def __init__(self, site: Site) -> None:
        envoy = router_for(site.spec().router)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(_run(envoy.read_state()))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self._answer(_run(envoy.apply(RouterState.model_validate_json(body))))

            def _answer(self, state: RouterState) -> None:
                body = state.model_dump_json().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/routing/{site.name}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("error_rates", "outcome"), [((0.0, 0.0), "promoted"), ((0.0, 0.3), "rolled_back")]
)
async def test_a_webhook_platform_promotes_and_rolls_back(
    stack: LocalStack, client: Client, error_rates: tuple[float, float], outcome: str
) -> None:
    site = Site(stack, f"webhook-{outcome.replace('_', '-')}", error_rates=error_rates)
    platform = EnvoyPlatform(site)
    try:
        spec = site.spec(stages=STAGES, failed_checks_tolerated=1)
        spec = spec.model_copy(update={"router": WebhookRouter(url=platform.url)})
        result = await (await start_deployment(client, spec, TASK_QUEUE)).result()
        state = await site.router_state()
    finally:
        platform.close()
        site.stop()
    assert result.outcome == outcome, result.reason
    serving = site.canary if outcome == "promoted" else site.stable
    assert state.canary_weight == 0 and state.stable_endpoints == (serving.address,)
