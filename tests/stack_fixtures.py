"""Fixtures for the end-to-end tests: one local stack and dev server per test session.

Use from a test module with `pytest_plugins = ["tests.stack_fixtures"]`. Every process
the stack starts is stopped by PID at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.stack import LocalStack, Site


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
