"""Fixtures for the end-to-end tests: one local stack and dev server per test session.

Use from a test module with `pytest_plugins = ["tests.stack_fixtures"]`. Every process
the stack starts is stopped by PID at the end of the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from deploy.processes import Process, free_port, start, venv_binary
from deploy.stack import LocalStack, Site
from frontends.client.operations import ensure_worker
from sluicegate.errors import NoWorker
from sluicegate.settings import Settings
from tests.waiting import eventually
from workers.client import connect


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("stack"))
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(scope="session")
def dev_server(stack: LocalStack) -> str:
    """The address of a Temporal dev server with Sluicegate's search attributes."""
    address, _ = stack.temporal()
    return address


@pytest.fixture
def site(stack: LocalStack, request: pytest.FixtureRequest) -> Iterator[Site]:
    """A service of its own for each test: Envoy, v1 and v2 builds, steady load."""
    site = Site(stack, request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-"))
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
async def client(dev_server: str) -> Client:
    """A Temporal client on the session's dev server."""
    return await connect(Settings(temporal_address=dev_server))


@pytest.fixture(scope="module")
async def worker(
    stack: LocalStack, dev_server: str, request: pytest.FixtureRequest
) -> AsyncIterator[Process]:
    """`sluice worker` on the test module's TASK_QUEUE, once it polls; stopped by PID."""
    async with sluice_worker(stack, dev_server, request.module.TASK_QUEUE) as process:
        yield process


@asynccontextmanager
async def sluice_worker(
    stack: LocalStack, address: str, task_queue: str, env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    """`sluice worker` on `task_queue` as a subprocess, once it polls; stopped by PID."""
    env = {
        "SLUICEGATE_TEMPORAL_ADDRESS": address,
        "SLUICEGATE_TASK_QUEUE": task_queue,
        "SLUICEGATE_EVIDENCE_URL": str(stack.evidence),
        **(env or {}),
    }
    process = start(f"worker-{task_queue}", [venv_binary("sluice"), "worker"], stack.log_dir, env)
    client = await connect(Settings(temporal_address=address))

    async def polling() -> bool:
        assert process.alive(), process.tail()
        try:
            await ensure_worker(client, task_queue)
        except NoWorker:
            return False
        return True

    try:
        await eventually(polling, "sluice worker polls the task queue")
        yield process
    finally:
        process.stop()


@asynccontextmanager
async def sluice_chatops(
    stack: LocalStack,
    address: str,
    task_queue: str,
    config_toml: str,
    home: Path,
    health: dict[str, bool] | None = None,
) -> AsyncIterator[tuple[str, Process]]:
    """`sluice chatops` on a free loopback port with this config, once /healthz answers
    (with `health`, if given); its base URL and process; stopped by PID."""
    config = home / "sluicegate.toml"
    config.write_text(config_toml)
    port = free_port()
    env = {
        "HOME": str(home),
        "SLUICEGATE_TEMPORAL_ADDRESS": address,
        "SLUICEGATE_TASK_QUEUE": task_queue,
        "SLUICEGATE_EVIDENCE_URL": str(stack.evidence),
    }
    argv = [venv_binary("sluice"), "--config", str(config), "chatops", "--port", str(port)]
    process = start(f"chatops-{task_queue}", argv, stack.log_dir, env)
    url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        assert process.alive(), process.tail()
        try:
            async with httpx.AsyncClient() as http:
                response = await http.get(f"{url}/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and health in (None, response.json())

    try:
        await eventually(healthy, "sluice chatops answers /healthz")
        yield url, process
    finally:
        process.stop()
