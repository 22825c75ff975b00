"""The evidence store, report pages and DORA figures end to end: a real `sluice worker`
keeps a failing canary's evidence in the stack's SQLite store and links its report in a
webhook notification; a real `sluice chatops` serves the page for that signed link (or a
token's); `sluice report` reads it back; the worker's /metrics shows the DORA gauges."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from activities.evidence.store import EvidenceStore
from deploy.processes import free_port, venv_binary
from deploy.stack import LocalStack, Site
from frontends.chatops.access import token_digest
from frontends.client.deployments import DeploymentHandle, start_deployment
from sluicegate.contracts import DeploymentResult
from sluicegate.evidence import StoreUrl
from tests.local_http import WebhookReceiver
from tests.stack_fixtures import sluice_chatops, sluice_worker
from tests.waiting import eventually

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "reports-e2e"
SERVICE = "report-e2e"
REPORT_SECRET = "report-e2e-secret-4f1c9a7d2b"
VIEWER = "sgt_report_e2e_viewer"  # allowed status on SERVICE only
STRANGER = "sgt_report_e2e_stranger"  # allowed status on another service only
CLI_TIMEOUT = 300.0  # seconds a `sluice report` may take on a loaded machine


@dataclass
class Processes:
    chatops: str  # base URL
    metrics: str  # host:port of the worker's /metrics


@dataclass
class RolledBack:
    result: DeploymentResult
    first_run_id: str


def signed(run: str) -> str:
    """The signature a worker makes for `run` of SERVICE (Settings.report_signature)."""
    message = f"{SERVICE}/{run}".encode()
    return hmac.new(REPORT_SECRET.encode(), message, hashlib.sha256).hexdigest()


def sent(receiver: WebhookReceiver, event: str) -> list[dict[str, Any]]:
    """SERVICE's notifications of `event`, in the order they came."""
    posts = receiver.posts.get("hook", [])
    return [p for p in posts if p.get("service") == SERVICE and p["event"] == event]


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def chatops_toml() -> str:
    def token(name: str, secret: str, service: str) -> str:
        return (
            f'[[chatops.tokens]]\nname = "{name}"\nsha256 = "{token_digest(secret)}"\n'
            f'services = ["{service}"]\nactions = ["status"]\n'
        )

    return (
        f'report_secret = "{REPORT_SECRET}"\n'
        "[chatops]\n"
        'rate_limit = "200/minute"\n'
        + token("viewer", VIEWER, SERVICE)
        + token("stranger", STRANGER, "someone-else")
    )


@pytest.fixture(scope="module")
async def processes(
    stack: LocalStack,
    dev_server: str,
    receiver: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Processes]:
    """`sluice chatops` serving report pages, then a `sluice worker` whose notifications go
    to the receiver and link to those pages, signed with the same secret; both stopped by
    PID at the end of the module."""
    home = tmp_path_factory.mktemp("reports-chatops")
    async with sluice_chatops(stack, dev_server, TASK_QUEUE, chatops_toml(), home) as (url, _):
        metrics = f"127.0.0.1:{free_port()}"
        channels = [{"name": "reports", "type": "webhook", "url": f"{receiver.url}/hook"}]
        env = {
            "SLUICEGATE_NOTIFICATIONS": json.dumps(channels),
            "SLUICEGATE_REPORT_URL": url,
            "SLUICEGATE_REPORT_SECRET": REPORT_SECRET,
            "SLUICEGATE_METRICS_ADDRESS": metrics,
        }
        async with sluice_worker(stack, dev_server, TASK_QUEUE, env):
            yield Processes(chatops=url, metrics=metrics)


async def broken_canary(
    stack: LocalStack, client: Client, service: str, task_queue: str
) -> tuple[DeploymentHandle, DeploymentResult]:
    """A deployment of `service` whose canary answers 30% errors, until it ends."""
    site = Site(stack, service, error_rates=(0.0, 0.3))
    try:
        stages = [{"name": "half", "weight": 50, "bake": "PT10M"}]
        handle = await start_deployment(client, site.spec(stages=stages), task_queue)
        return handle, await handle.result()
    finally:
        site.stop()


def kept_outcome(stack: LocalStack) -> str | None:
    """The outcome the evidence store kept of SERVICE's latest deployment, if any."""
    with EvidenceStore(StoreUrl.parse(str(stack.evidence))) as store:
        deployment_id = store.latest(SERVICE)
        evidence = store.evidence(deployment_id) if deployment_id else None
    return evidence.summary.outcome if evidence else None


@pytest.fixture(scope="module")
async def rolled_back(
    stack: LocalStack, client: Client, processes: Processes, receiver: WebhookReceiver
) -> RolledBack:
    """A canary answering 30% errors, rolled back; once the store has kept the outcome (the
    worker's recorder writes behind) and the receiver has the rolled_back notification."""
    handle, result = await broken_canary(stack, client, SERVICE, TASK_QUEUE)
    assert result.outcome == "rolled_back", result.reason
    assert handle.first_execution_run_id is not None
    await eventually(lambda: kept_outcome(stack) == "rolled_back", "the store keeps the outcome")
    await eventually(lambda: sent(receiver, "rolled_back"), "the rolled_back notification arrives")
    return RolledBack(result, handle.first_execution_run_id)


# -- the notification's link, and the page chat-ops serves for it -------------------------


async def test_the_rollback_notification_links_the_signed_report_page(
    rolled_back: RolledBack, processes: Processes, receiver: WebhookReceiver
) -> None:
    # A delivery retried after a slow answer may come twice: the same body each time.
    [report] = {post["report"] for post in sent(receiver, "rolled_back")}
    link = urlparse(report)
    assert f"{link.scheme}://{link.netloc}" == processes.chatops
    assert link.path == f"/reports/{SERVICE}/{rolled_back.first_run_id}"
    [signature] = parse_qs(link.query)["signature"]
    assert len(signature) == 64 and set(signature) <= set("0123456789abcdef")
    assert signature == signed(rolled_back.first_run_id)
    # The breach links the same page; the start links none.
    assert {post["report"] for post in sent(receiver, "breach")} == {report}
    assert {post["report"] for post in sent(receiver, "started")} == {None}


async def test_the_report_page_opens_with_its_signature_or_a_token_allowed_status(
    rolled_back: RolledBack, receiver: WebhookReceiver
) -> None:
    link = sent(receiver, "rolled_back")[0]["report"]
    page_url, _, query = link.partition("?")
    signature = parse_qs(query)["signature"][0]
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    no_such_run = f"{page_url.rsplit('/', 1)[0]}/no-such-run"
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    async with httpx.AsyncClient(timeout=120) as http:
        page = await http.get(link)
        unsigned = await http.get(page_url)
        forged = await http.get(page_url, params={"signature": tampered})
        other_run = await http.get(page_url, params={"signature": signed("another-run")})
        with_token = await http.get(page_url, headers=viewer)
        wrong_service = await http.get(page_url, headers={"Authorization": f"Bearer {STRANGER}"})
        unknown_token = await http.get(page_url, headers={"Authorization": "Bearer sgt_nobody"})
        missing = await http.get(no_such_run, headers=viewer)
        missing_signed = await http.get(no_such_run, params={"signature": signed("no-such-run")})

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    body = page.text
    assert SERVICE in body
    assert "<h2>Why it rolled back</h2>" in body
    assert "plotly.js" in body and "Plotly.newPlot" in body  # inlined, and charts drawn
    assert len(body) > 1_000_000

    assert unsigned.status_code == 401, unsigned.text
    assert "no signature" in unsigned.json()["error"]
    assert forged.status_code == 401, forged.text
    assert "bad signature" in forged.json()["error"]
    assert other_run.status_code == 401, other_run.text  # a signature is for its own run

    assert with_token.status_code == 200, with_token.text
    assert with_token.headers["content-type"].startswith("text/html")
    assert "<h2>Why it rolled back</h2>" in with_token.text
    assert wrong_service.status_code == 403, wrong_service.text
    assert unknown_token.status_code == 401, unknown_token.text

    assert missing.status_code == 404, missing.text
    assert "no-such-run" in missing.json()["error"]
    assert missing_signed.status_code == 404, missing_signed.text


# -- `sluice report` -----------------------------------------------------------------------


def sluice_report(stack: LocalStack, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sluice report ARGS` on the stack's evidence store, no settings file of the user's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLUICEGATE_")}
    env |= {"HOME": str(home), "SLUICEGATE_EVIDENCE_URL": str(stack.evidence), "COLUMNS": "200"}
    return subprocess.run(
        [venv_binary("sluice"), "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_sluice_report_shows_the_breach_and_exits_1_for_a_rollback(
    rolled_back: RolledBack, stack: LocalStack, tmp_path: Path
) -> None:
    text = sluice_report(stack, tmp_path, SERVICE)
    assert text.returncode == 1, (text.stdout, text.stderr)
    assert f"{SERVICE}: " in text.stdout and ": rolled_back" in text.stdout
    assert "breach: check " in text.stdout and " of stage half " in text.stdout
    assert "stage half: " in text.stdout and " breaching" in text.stdout

    as_json = sluice_report(stack, tmp_path, SERVICE, rolled_back.first_run_id, "--json")
    assert as_json.returncode == 1, (as_json.stdout, as_json.stderr)
    evidence = json.loads(as_json.stdout)
    assert evidence["summary"]["outcome"] == "rolled_back"
    assert evidence["summary"]["service"] == SERVICE
    assert evidence["summary"]["deployment_id"] == rolled_back.first_run_id
    assert any(check["rollback"] for check in evidence["checks"])
    breaches = [check for check in evidence["checks"] if check["status"] == "breach"]
    assert breaches and all(check["stage"] == "half" for check in breaches)

    out = tmp_path / "out.html"
    page = sluice_report(stack, tmp_path, SERVICE, "--html", str(out))
    assert page.returncode == 1, (page.stdout, page.stderr)
    assert f"wrote {out}" in page.stdout
    assert out.stat().st_size > 1_000_000  # Plotly's JavaScript is inlined
    html = out.read_text(encoding="utf-8")
    assert "<h2>Why it rolled back</h2>" in html and SERVICE in html


def test_sluice_report_since_gives_the_dora_figures(
    rolled_back: RolledBack, stack: LocalStack, tmp_path: Path
) -> None:
    done = sluice_report(stack, tmp_path, "--since", "1d", SERVICE, "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    figures = json.loads(done.stdout)
    ours = [f for f in figures if f["service"] == SERVICE]
    assert len(ours) == 1, figures
    assert ours[0]["deployments"] == 1
    assert ours[0]["rolled_back"] == 1 and ours[0]["promoted"] == 0
    assert ours[0]["change_failure_rate"] == 1.0

    table = sluice_report(stack, tmp_path, "--since", "1d", SERVICE)
    assert table.returncode == 0, (table.stdout, table.stderr)
    assert SERVICE in table.stdout


def test_sluice_report_refuses_bad_input_and_unknown_services(
    rolled_back: RolledBack, stack: LocalStack, tmp_path: Path
) -> None:
    zero = sluice_report(stack, tmp_path, "--since", "0d")
    assert zero.returncode == 2, (zero.stdout, zero.stderr)
    assert "--since" in zero.stderr

    unknown = sluice_report(stack, tmp_path, "nosuch-service")
    assert unknown.returncode == 4, (unknown.stdout, unknown.stderr)
    assert "nosuch-service" in unknown.stderr


# -- the worker's metrics ------------------------------------------------------------------


async def scrape(address: str) -> dict[tuple[str, str | None], float]:
    """The samples of the worker's /metrics by (name, service label)."""
    async with httpx.AsyncClient(timeout=60) as http:
        text = (await http.get(f"http://{address}/metrics")).text
    return {
        (sample.name, sample.labels.get("service")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_workers_metrics_show_the_change_failure_rate(
    rolled_back: RolledBack, processes: Processes
) -> None:
    samples: dict[tuple[str, str | None], float] = {}

    async def failure_rate_shown() -> bool:
        nonlocal samples
        samples = await scrape(processes.metrics)
        return samples.get(("sluicegate_dora_change_failure_rate", None), 0.0) > 0

    # The DORA gauges (all services together: the stack's store holds other modules'
    # deployments too) are read again within ~10 s of the worker keeping an outcome.
    await eventually(failure_rate_shown, "sluicegate_dora_change_failure_rate > 0", 1200)
    assert samples[("sluicegate_dora_change_failure_rate", None)] <= 1
    assert samples[("sluicegate_evidence_store_up", None)] == 1.0
    assert samples[("sluicegate_dora_deployments_per_day", None)] > 0
    assert not any(service for name, service in samples if name.startswith("sluicegate_dora"))


# -- a store that is down ------------------------------------------------------------------


async def test_a_store_that_is_down_never_holds_up_a_rollback(
    stack: LocalStack, dev_server: str, client: Client
) -> None:
    """A worker whose PostgreSQL never answers: the broken canary is rolled back all the same,
    and the worker says the store is unavailable and that the deployments go on."""
    queue = f"{TASK_QUEUE}-store-down"
    down = f"postgresql://sluicegate@127.0.0.1:{free_port()}/evidence"
    async with sluice_worker(stack, dev_server, queue, {"SLUICEGATE_EVIDENCE_URL": down}) as worker:
        _, result = await broken_canary(stack, client, f"{SERVICE}-down", queue)
        assert result.outcome == "rolled_back", result.reason
        assert result.evidence is not None and result.evidence.verdict.status == "breach"
        await eventually(
            lambda: "unavailable" in worker.tail(200) and "deployments go on" in worker.tail(200),
            "the worker logs that the evidence store is down",
        )
