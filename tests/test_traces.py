"""Traces and deployment logs end to end: `sluice worker` and `sluice` (subprocesses) with
OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver in this test, which decodes
the real protobuf (ExportTraceServiceRequest); a real deployment on the dev server with
Envoy, held at a manual gate until `sluice promote`; then the span tree, and the worker's
JSON log lines about the deployment."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from temporalio.client import Client

from deploy.processes import REPO_ROOT, Process, venv_binary
from deploy.stack import LocalStack, Site
from frontends.client.deployments import handle_for, query_status
from tests.stack_fixtures import sluice_worker
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "traces"
GATED_STAGES = [{"name": "review", "weight": 20, "bake": "PT1S", "manual_gate": True}]
VERDICTS = ("healthy", "breach", "inconclusive")
ACTIVITIES = ("backup", "measure_baseline", "set_traffic", "watch_health")


# -- an OTLP/HTTP receiver -----------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {pair.key: _value(pair.value) for pair in items}


@dataclass
class Collector:
    """What the processes exported, decoded from ExportTraceServiceRequest bodies."""

    url: str = ""
    spans: list[Span] = field(default_factory=list[Span])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        received: list[Span] = []
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes)["service.name"]
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            links=tuple(
                                (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ),
                        )
                    )
        with self.lock:
            self.spans.extend(received)

    def all(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            try:
                collector.receive(body)
            except Exception as err:  # a body that is no ExportTraceServiceRequest
                self.send_error(400, str(err))
                return
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the processes and the deployment -------------------------------------------------------


def traced(collector: Collector) -> dict[str, str]:
    # A short batch delay only makes the spans arrive sooner; nothing waits on its length.
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def sluice(address: str, home: Path, *args: str, env: dict[str, str]) -> CompletedProcess[str]:
    return subprocess.run(
        [venv_binary("sluice"), *args],
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO_ROOT),
            "HOME": str(home),
            "SLUICEGATE_TEMPORAL_ADDRESS": address,
            "SLUICEGATE_TASK_QUEUE": TASK_QUEUE,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
async def worker(
    stack: LocalStack, dev_server: str, collector: Collector, home: Path
) -> AsyncIterator[Process]:
    env = {**traced(collector), "HOME": str(home), "SLUICEGATE_LOG_FORMAT": "json"}
    async with sluice_worker(stack, dev_server, TASK_QUEUE, env) as process:
        yield process


@dataclass(frozen=True)
class Deployment:
    workflow_id: str
    run_id: str
    service: str


@pytest.fixture(scope="module")
async def deployment(
    stack: LocalStack,
    dev_server: str,
    client: Client,
    worker: Process,
    collector: Collector,
    home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    """`sluice deploy` (traced), held at its gate, `sluice promote` (traced), promoted."""
    site = Site(stack, "traces")
    try:
        spec = tmp_path_factory.mktemp("spec") / "traces.json"
        spec.write_text(site.spec(stages=GATED_STAGES).model_dump_json())
        done = sluice(dev_server, home, "deploy", str(spec), "--json", env=traced(collector))
        assert done.returncode == 0, done.stdout + done.stderr
        started = json.loads(done.stdout)
        handle = handle_for(client, started["workflow_id"], started["run_id"])

        async def at_the_gate() -> bool:
            return (await query_status(handle)).phase == "awaiting_approval"

        await eventually(at_the_gate, "the deployment waits at its manual gate", attempts=400)
        promote = ("promote", site.name, "--reason", "traced")
        done = sluice(dev_server, home, *promote, env=traced(collector))
        assert done.returncode == 0, done.stdout + done.stderr
        result = await handle.result()
        assert result.outcome == "promoted", result
        deployment = Deployment(started["workflow_id"], started["run_id"], site.name)

        def completed() -> bool:
            return any(
                span.name == "CompleteWorkflow:CanaryDeployment"
                and span.attributes.get("temporalRunID") == deployment.run_id
                for span in collector.all()
            )

        await eventually(completed, "the worker exports the workflow's CompleteWorkflow span")

        def every_watcher_ended() -> bool:
            """The workflow does not wait for a stopped watcher, which ends (and exports its
            RunActivity span) at its next heartbeat, after its checks' spans."""
            spans = collector.all()
            ids = {span.span_id for span in spans}
            return all(s.parent_id in ids for s in spans if s.name == "HealthCheck")

        await eventually(every_watcher_ended, "every watcher's span is exported", attempts=1200)
        yield deployment
    finally:
        site.stop()


# -- the span tree -------------------------------------------------------------------------


class Tree:
    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}

    def named(self, name: str, **attributes: Any) -> list[Span]:
        return [
            span
            for span in self.spans
            if span.name == name
            and all(span.attributes.get(key) == value for key, value in attributes.items())
        ]

    def one(self, name: str, **attributes: Any) -> Span:
        found = self.named(name, **attributes)
        assert len(found) == 1, (name, attributes, found)
        return found[0]

    def ancestors(self, span: Span) -> list[Span]:
        chain: list[Span] = []
        while span.parent_id:
            assert span.parent_id in self.by_id, f"{span.name}'s parent was never exported"
            span = self.by_id[span.parent_id]
            chain.append(span)
        return chain


def test_one_trace_from_the_cli_command_to_every_check(
    collector: Collector, deployment: Deployment
) -> None:
    tree = Tree(collector.all())
    command = tree.one("sluice deploy")
    assert (command.service, command.parent_id) == ("sluice", ""), "the trace's root"
    start = tree.one("StartWorkflow:CanaryDeployment", temporalWorkflowID=deployment.workflow_id)
    assert (start.service, start.parent_id) == ("sluice", command.span_id)

    ids = {"temporalWorkflowID": deployment.workflow_id, "temporalRunID": deployment.run_id}
    run = tree.one("RunWorkflow:CanaryDeployment", **ids)
    assert (run.service, run.trace_id, run.parent_id) == (
        "sluicegate-worker",
        command.trace_id,
        start.span_id,
    )
    for name in ACTIVITIES:
        executions = tree.named(f"RunActivity:{name}", temporalRunID=deployment.run_id)
        assert executions, f"no RunActivity:{name}"
        for execution in executions:
            assert execution.service == "sluicegate-worker"
            parent = tree.by_id[execution.parent_id]
            assert parent.name == f"StartActivity:{name}", parent
            assert tree.ancestors(execution)[-1] == command, f"{name} is in the deploy's trace"

    watchers = {span.span_id for span in tree.named("RunActivity:watch_health")}
    checks = [span for span in tree.named("HealthCheck") if span.trace_id == command.trace_id]
    assert checks, "the watcher's checks are spans"
    judged: list[Span] = []
    for check in checks:
        assert check.parent_id in watchers, check
        assert isinstance(check.attributes["sluicegate.check.number"], int)
        assert check.attributes["sluicegate.stage"], "the stage the check judged"
        if "sluicegate.check.verdict" in check.attributes:
            judged.append(check)
            assert check.attributes["sluicegate.check.verdict"] in VERDICTS
            assert isinstance(check.attributes["sluicegate.check.rollback"], bool)
        else:  # only a watcher's last check may be cut short by its cancellation
            siblings = [span for span in checks if span.parent_id == check.parent_id]
            last = max(span.attributes["sluicegate.check.number"] for span in siblings)
            assert check.attributes["sluicegate.check.number"] == last, check
    assert any(check.attributes["sluicegate.check.verdict"] == "healthy" for check in judged)


def test_a_control_from_the_cli_is_linked_into_the_deployments_trace(
    collector: Collector, deployment: Deployment
) -> None:
    tree = Tree(collector.all())
    command = tree.one("sluice deploy")
    promote = tree.one("sluice promote")
    sent = tree.one("StartWorkflowUpdate:promote", temporalWorkflowID=deployment.workflow_id)
    assert (sent.service, sent.parent_id) == ("sluice", promote.span_id)

    handled = tree.named("HandleUpdate:promote", temporalRunID=deployment.run_id)
    validated = tree.named("ValidateUpdate:promote", temporalRunID=deployment.run_id)
    assert handled and validated
    for span in (*handled, *validated):
        assert span.trace_id == command.trace_id, "in the deployment's trace"
        assert (sent.trace_id, sent.span_id) in span.links, "linked to the CLI's request"


# -- the worker's log lines ----------------------------------------------------------------


def test_every_worker_line_about_the_deployment_names_its_workflow_and_run(
    worker: Process, deployment: Deployment
) -> None:
    lines = worker.log.read_text().splitlines()
    about = [line for line in lines if deployment.workflow_id in line]
    assert len(about) >= 3, "started, the stage, promoted at least"
    for line in about:
        record = json.loads(line)
        assert record["workflow_id"] == deployment.workflow_id, record
        assert record["run_id"] == deployment.run_id, record
