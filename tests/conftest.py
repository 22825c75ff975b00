"""Shared fixtures: the Temporal environments (time-skipping by default) and a sample spec."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.http import close_shared_client
from deploy.processes import venv_binary
from workers.client import DATA_CONVERTER
from workers.search_attributes import ensure_search_attributes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
async def shared_pool_closed() -> AsyncIterator[None]:
    """Close the HTTP pool of the tests' event loop at the end, as a worker does."""
    yield
    await close_shared_client()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real time-skipping test server, started from the venv's binary (offline).

    One per test: the server's clock and its workflows never carry over, since its
    auto-skipping can wedge under the load of earlier tests' timers and activities.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=venv_binary("temporal-test-server"),
    )
    try:
        await ensure_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"
