"""The local stack's parts as real processes: sample service, load generator, dev server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.loadgen import loopback_problem, start_loadgen
from deploy.processes import REPO_ROOT, free_port, venv_binary
from deploy.sample_service import set_fault, start_sample_service
from deploy.temporal_server import start_dev_server
from sluicegate.visibility import SEARCH_ATTRIBUTES, search_attribute_flags
from workers.search_attributes import ensure_search_attributes


def run_module(module: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[int]:
    """A running sample service `v2`; yields its port."""
    port = free_port()
    process = start_sample_service("v2", port, tmp_path / "logs")
    try:
        yield port
    finally:
        process.stop()


# --- sample service ---------------------------------------------------------------------


def test_sample_service_answers_with_its_version(sample: int) -> None:
    base = f"http://127.0.0.1:{sample}"
    response = httpx.get(f"{base}/", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"version": "v2"}
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{base}/fault", timeout=5).json() == {"error_rate": 0.0, "delay_ms": 0.0}
    assert httpx.get(f"{base}/nope", timeout=5).status_code == 404


def test_faults_change_at_runtime(sample: int) -> None:
    url = f"http://127.0.0.1:{sample}/"
    assert set_fault(sample, 0.5, 0) == {"error_rate": 0.5, "delay_ms": 0.0}
    with httpx.Client(timeout=5) as client:
        statuses = Counter(client.get(url).status_code for _ in range(400))
        assert set(statuses) <= {200, 500}
        assert 120 <= statuses[500] <= 280, statuses  # mean 200, sd 10
        assert client.get(f"http://127.0.0.1:{sample}/healthz").status_code == 200

        assert set_fault(sample, 0.0, 100) == {"error_rate": 0.0, "delay_ms": 100.0}
        for _ in range(3):
            began = time.monotonic()
            response = client.get(url)
            assert response.status_code == 200
            assert time.monotonic() - began >= 0.1

        assert set_fault(sample, 0.0, 0) == {"error_rate": 0.0, "delay_ms": 0.0}
        assert all(client.get(url).status_code == 200 for _ in range(50))


def test_fault_endpoint_rejects_bad_values(sample: int) -> None:
    base = f"http://127.0.0.1:{sample}/fault"
    response = httpx.post(base, params={"error_rate": "1.5"}, timeout=5)
    assert response.status_code == 400
    assert "between 0 and 1" in response.json()["error"]
    assert httpx.post(base, params={"delay_ms": "-1"}, timeout=5).status_code == 400
    assert httpx.get(base, timeout=5).json() == {"error_rate": 0.0, "delay_ms": 0.0}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "8080", "--version", "v1", "--error-rate", "1.5"], "--error-rate"),
        (["--port", "8080", "--version", "v1", "--error-rate", "lots"], "--error-rate"),
        (["--port", "8080", "--version", "v1", "--delay-ms", "-1"], "--delay-ms"),
        (["--port", "0", "--version", "v1"], "--port"),
        (["--port", "8080"], "--version"),
    ],
)
def test_sample_service_rejects_bad_arguments(args: list[str], option: str) -> None:
    result = run_module("deploy.sample_service", *args)
    assert result.returncode != 0
    assert option in result.stderr


def test_sample_service_help_explains_each_option() -> None:
    result = run_module("deploy.sample_service", "--help")
    assert result.returncode == 0
    for option in ("--port", "--version", "--error-rate", "--delay-ms"):
        assert option in result.stdout


# --- load generator ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://127.9.8.7/", True),
        ("http://localhost:10000/x", True),
        ("http://[::1]:8080/", True),
        ("http://10.0.0.1/", False),
        ("http://example.com/", False),
        ("http://127.0.0.1.nip.io/", False),
        ("http://[::2]/", False),
        ("ftp://127.0.0.1/", False),
    ],
)
def test_loopback_check(url: str, allowed: bool) -> None:
    assert (loopback_problem(url) is None) == allowed


def test_loadgen_refuses_non_loopback_url(tmp_path: Path) -> None:
    result = run_module("deploy.loadgen", "--url", "http://192.0.2.1/", "--rps", "10")
    assert result.returncode != 0
    assert "--url" in result.stderr
    assert "non-loopback" in result.stderr
    with pytest.raises(ValueError, match="non-loopback"):
        start_loadgen("http://192.0.2.1/", 10, tmp_path)


def test_loadgen_rejects_bad_rate() -> None:
    result = run_module("deploy.loadgen", "--url", "http://127.0.0.1/", "--rps", "0")
    assert result.returncode != 0
    assert "--rps" in result.stderr


def test_loadgen_sends_for_its_duration(sample: int) -> None:
    set_fault(sample, 0.2, 0)
    result = run_module(
        "deploy.loadgen", "--url", f"http://127.0.0.1:{sample}/", "--rps", "50", "--duration", "1"
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    sent = re.search(r"sent=(\d+)", summary)
    assert sent is not None, summary
    assert int(sent.group(1)) > 0
    assert re.search(r"\b200=\d+", summary), summary
    assert re.search(r"\b500=\d+", summary), summary


def test_loadgen_stops_on_sigterm_with_summary(sample: int, tmp_path: Path) -> None:
    process = start_loadgen(f"http://127.0.0.1:{sample}/", 20, tmp_path)
    try:
        assert process.alive()
    finally:
        process.stop()
    assert process.popen.returncode == 0
    assert re.search(r"loadgen: sent=\d+ .*", process.log.read_text()), process.tail()


# --- Temporal servers -------------------------------------------------------------------


def test_search_attribute_flags_name_each_key() -> None:
    assert search_attribute_flags() == [
        "DeployService=Keyword",
        "DeployPhase=Keyword",
        "DeployCanaryWeight=Int",
        "DeployOutcome=Keyword",
        "DeployCanaryVersion=Keyword",
    ]


async def test_dev_server_registers_search_attributes(tmp_path: Path) -> None:
    port = free_port()
    process = start_dev_server(tmp_path / "state", port, free_port(), tmp_path / "logs")
    try:
        client = await Client.connect(f"127.0.0.1:{port}")
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        for key in SEARCH_ATTRIBUTES:
            assert listed.custom_attributes[key.name] == IndexedValueType.ValueType(
                key.indexed_value_type.value
            )
        await ensure_search_attributes(client)  # already there: a no-op, not an error
        assert (tmp_path / "state" / "temporal.db").exists()
    finally:
        process.stop()
    assert process.popen.returncode == 0, process.tail()


async def test_ensure_search_attributes_on_time_skipping_server() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server")
    )
    async with env:
        await ensure_search_attributes(env.client)
        await ensure_search_attributes(env.client)  # idempotent
