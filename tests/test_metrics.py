"""The worker's Prometheus metrics (docs/OBSERVABILITY.md), read from a real `sluice worker`
after real deployments on the local stack, scraped by a real Prometheus; the alert rules
of the docs checked by promtool."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.deployment import measure_stable_baseline, set_traffic
from bench.scripted import ScriptedActivities
from deploy.processes import free_port, venv_binary
from deploy.prometheus import INSTALL_HINT, Prometheus, prometheus_binary
from deploy.sample_service import set_fault
from deploy.stack import LocalStack, Site
from frontends.client.deployments import start_deployment
from sluicegate.contracts import (
    STATUS,
    BaselineInput,
    DeploymentStatus,
    RouterState,
    SetTrafficInput,
)
from sluicegate.settings import Settings
from sluicegate.spec import AnalysisSpec, WebhookRouter
from tests.stack_fixtures import sluice_worker
from tests.test_workflow import unique_spec
from tests.waiting import eventually
from workers.client import connect
from workers.main import build_worker
from workers.metrics import metrics_runtime

pytest_plugins = ["tests.stack_fixtures"]
TASK_QUEUE = "metrics"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "OBSERVABILITY.md"
# Samples by (name, sorted labels without Temporal's own): value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TEMPORAL_LABELS = {"namespace", "task_queue", "workflow_type", "activity_type"}


@pytest.fixture(scope="module")
async def metrics_address(stack: LocalStack, dev_server: str) -> AsyncIterator[str]:
    """`sluice worker` on TASK_QUEUE serving metrics on a free port; its host:port."""
    address = f"127.0.0.1:{free_port()}"
    # A channel nobody listens on: every notification fails, and is counted.
    channel = (
        f'[{{"name": "nowhere", "type": "webhook", "url": "http://127.0.0.1:{free_port()}/"}}]'
    )
    env = {"SLUICEGATE_METRICS_ADDRESS": address, "SLUICEGATE_NOTIFICATIONS": channel}
    async with sluice_worker(stack, dev_server, TASK_QUEUE, env):
        yield address


async def scrape(address: str) -> tuple[str, Samples]:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{address}/metrics")).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k not in TEMPORAL_LABELS)
            key = (sample.name, labels)
            samples[key] = samples.get(key, 0.0) + sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of `name` that carry `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.mark.e2e
async def test_a_promotion_and_a_rollback_are_counted_on_the_workers_endpoint(
    metrics_address: str, client: Client, stack: LocalStack, site: Site
) -> None:
    smoke = {"smoke": [{"type": "smoke", "name": "canary-smoke"}]}
    breaching = Site(stack, "metrics-breach")
    try:
        promoted = await start_deployment(
            client, site.spec(failed_checks_tolerated=1, top_level=smoke), TASK_QUEUE
        )
        stages = [
            {"name": "canary", "weight": 5, "bake": "PT2S"},
            {"name": "pilot", "weight": 50, "bake": "PT5M"},
        ]
        breached = await start_deployment(client, breaching.spec(stages=stages), TASK_QUEUE)

        async def at_pilot() -> bool:
            status = await breached.query(STATUS, result_type=DeploymentStatus)
            return status.canary_weight == 50

        await eventually(at_pilot, "the second deployment reaches 50%")

        async def in_flight() -> bool:
            _, samples = await scrape(metrics_address)
            return value(samples, "sluicegate_deployments_in_flight", phase="progressing") >= 1

        await eventually(in_flight, "a progressing deployment is in flight", attempts=900)
        set_fault(breaching.canary.port, error_rate=0.3, delay_ms=0)
        results = await asyncio.gather(promoted.result(), breached.result())
    finally:
        breaching.stop()
    assert [r.outcome for r in results] == ["promoted", "rolled_back"], results

    async def counted() -> bool:  # the courier's last notifications may still be failing
        _, samples = await scrape(metrics_address)
        return value(samples, "sluicegate_notification_failures_total", event="rolled_back") >= 1

    await eventually(counted, "the failed rolled_back notification is counted")
    text, samples = await scrape(metrics_address)
    assert value(samples, "sluicegate_checks_total", verdict="healthy") >= 1, text
    assert value(samples, "sluicegate_checks_total", verdict="breach") >= 1, text
    assert value(samples, "sluicegate_check_lateness_seconds_count") >= 2, text
    assert value(samples, "sluicegate_rollbacks_total", reason="breach") == 1, text
    assert value(samples, "sluicegate_rollbacks_total") == 1, text
    assert value(samples, "sluicegate_breach_to_rollback_seconds_count") == 1, text
    assert value(samples, "sluicegate_breach_to_rollback_seconds_sum") > 0, text
    smoke_runs = value(
        samples, "sluicegate_hook_duration_seconds_count", kind="smoke", event="smoke", outcome="ok"
    )
    assert smoke_runs >= 1, text
    assert value(samples, "sluicegate_notification_failures_total", channel_type="webhook") >= 2
    # The Temporal SDK's own metrics, on the same endpoint, in the same conventions.
    assert value(samples, "temporal_workflow_completed_total") >= 2, text
    assert value(samples, "temporal_activity_execution_latency_seconds_count") >= 1, text
    # Bounded labels: no service name, workflow id or run id in any label value.
    for name in (site.name, "metrics-breach", promoted.id, breached.id):
        assert name not in text, f"{name} appears in the metrics"


@pytest.mark.e2e
@pytest.mark.skipif(prometheus_binary() is None, reason=f"no prometheus: {INSTALL_HINT}")
async def test_prometheus_scrapes_the_worker(
    metrics_address: str, stack: LocalStack, tmp_path: Path
) -> None:
    prometheus = Prometheus(tmp_path / "prometheus", tmp_path / "logs")
    await asyncio.to_thread(prometheus.start, {"sluicegate-worker": (metrics_address, "/metrics")})
    try:

        async def answered() -> bool:
            async with httpx.AsyncClient() as http:
                response = await http.get(
                    f"{prometheus.url}/api/v1/query",
                    params={"query": 'sluicegate_deployments_in_flight{phase="progressing"}'},
                )
            found = response.json()["data"]["result"]
            return bool(found) and found[0]["metric"]["job"] == "sluicegate-worker"

        await eventually(answered, "Prometheus answers a query for a Sluicegate metric")
    finally:
        prometheus.stop()


async def test_the_workflow_counts_rollbacks_and_deadlines_once_each(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    """On the time-skipping server with the scripted activities: a progress deadline and a
    gate's max_wait, each rolling back, as the worker's endpoint shows them."""
    address = f"127.0.0.1:{free_port()}"
    target = time_skipping_env.client.service_client.config.target_host
    client = await connect(Settings(temporal_address=target), runtime=metrics_runtime(address))
    specs = [
        unique_spec(
            task_queue + "-a",
            stages=[{"name": "soak", "weight": 20, "bake": "PT10H"}],
            progress_deadline={"after": "PT1H", "then": "rollback"},
        ),
        unique_spec(
            task_queue + "-b",
            stages=[{"name": "review", "weight": 10, "manual_gate": True}],
            max_wait={"after": "PT30M", "then": "rollback"},
        ),
    ]
    async with build_worker(client, task_queue, activities=ScriptedActivities().activities()):
        handles = [
            await start_deployment(time_skipping_env.client, spec, task_queue) for spec in specs
        ]
        results = [await handle.result() for handle in handles]
    assert [r.outcome for r in results] == ["rolled_back", "rolled_back"], results
    text, samples = await scrape(address)
    assert value(samples, "sluicegate_rollbacks_total", reason="abort") == 1, text
    assert value(samples, "sluicegate_rollbacks_total", reason="gate_timeout") == 1, text
    assert value(samples, "sluicegate_rollbacks_total") == 2, text
    assert value(samples, "sluicegate_breach_to_rollback_seconds_count") == 0, text
    passed = {
        (deadline, then): value(
            samples, "sluicegate_deadlines_passed_total", deadline=deadline, then=then
        )
        for deadline in ("progress", "max_wait")
        for then in ("rollback", "page")
    }
    assert passed == {
        ("progress", "rollback"): 1,
        ("progress", "page"): 0,
        ("max_wait", "rollback"): 1,
        ("max_wait", "page"): 0,
    }, text


async def test_unreachable_routers_and_metric_sources_are_counted_by_type() -> None:
    """The real activities against a webhook router and a Prometheus source that nothing
    answers, their meter served by a metrics runtime, as a worker's would be."""
    address = f"127.0.0.1:{free_port()}"
    env = ActivityEnvironment()
    runtime = metrics_runtime(address)  # held: the exporter lives as long as the runtime
    env.metric_meter = runtime.metric_meter
    nowhere = f"http://127.0.0.1:{free_port()}"
    router = WebhookRouter(url=f"{nowhere}/routing", timeout_seconds=2)
    desired = RouterState(canary_weight=5, stable_endpoints=("a:1",), canary_endpoints=("b:1",))
    with pytest.raises(ApplicationError) as raised:
        await env.run(set_traffic, SetTrafficInput(router=router, desired=desired))
    assert raised.value.type == "RouterUnavailable"
    analysis = AnalysisSpec.model_validate(
        {
            "source": {
                "type": "prometheus",
                "url": nowhere,
                **{query: "up" for query in ("requests", "errors", "latency_buckets")},
            },
            "baseline": "PT0.1S",
        }
    )
    await env.run(measure_stable_baseline, BaselineInput(service="svc", analysis=analysis))
    text, samples = await scrape(address)
    assert (
        value(
            samples,
            "sluicegate_router_errors_total",
            router="webhook",
            operation="apply",
            error="RouterUnavailable",
        )
        == 1
    ), text
    assert value(samples, "sluicegate_metric_source_errors_total", source="prometheus") == 2, text


def alert_rules() -> str:
    """The YAML block of docs/OBSERVABILITY.md's "## Alert rules" section."""
    section = DOCS.read_text().split("## Alert rules", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found, "docs/OBSERVABILITY.md: no ```yaml block under ## Alert rules"
    return found.group(1)


@pytest.mark.skipif(shutil.which("promtool") is None, reason=f"no promtool: {INSTALL_HINT}")
def test_the_documented_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "sluicegate.rules.yml"
    rules.write_text(alert_rules())
    promtool = shutil.which("promtool")
    assert promtool is not None
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_the_code_names_is_documented() -> None:
    from activities import measures as activity_metrics
    from workers import metrics as worker_metrics
    from workflows import measures as workflow_metrics

    docs = DOCS.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    for module in (activity_metrics, workflow_metrics, worker_metrics):
        for name in vars(module).values():
            if isinstance(name, str) and re.fullmatch(r"sluicegate_[a-z_]+", name):
                # As served: counters end in _total, durations in _seconds.
                assert re.search(rf"`{name}(_total|_seconds)?`", docs), f"{name}: not documented"


def test_a_taken_metrics_address_stops_the_worker_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(
            [venv_binary("sluice"), "worker", "--metrics-address", address],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"metrics_address {address}: " in done.stderr
    assert "Address already in use" in done.stderr
