"""Fixtures for the HAProxy tests: a real HAProxy in front of the test upstreams.

Use from a test module with `pytest_plugins = ["tests.haproxy_fixtures"]`; it brings the
`upstreams` fixture of tests/envoy_fixtures.py (stable, canary, other). Without the
haproxy binary the tests skip, saying how to install it. HAProxy is stopped by PID in
teardown and its socket directory removed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from activities.routers.haproxy import RuntimeApi
from deploy.haproxy import BACKEND, INSTALL_HINT, HAProxy, haproxy_binary
from deploy.processes import free_port
from sluicegate.spec import HAProxyRouter, HAProxyStats
from tests.traffic import send_gets

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream

pytest_plugins = ["tests.envoy_fixtures"]


class HAProxyStack(HAProxy):
    """A running HAProxy with helpers to drive it."""

    def router_spec(self, runtime_api: str | None = None, **overrides: str) -> HAProxyRouter:
        fields = {"runtime_api": runtime_api or str(self.socket), "backend": BACKEND, **overrides}
        return HAProxyRouter.model_validate(fields)

    def stats_spec(self, **overrides: str) -> HAProxyStats:
        fields = {"metrics_url": self.metrics_url, "backend": BACKEND, **overrides}
        return HAProxyStats.model_validate(fields)

    async def admin(self, command: str) -> str:
        """One runtime API command, as an operator would type it (behind Sluicegate's back)."""
        return await RuntimeApi(str(self.socket)).command(command)

    async def set_weights(self, stable: int, canary: int) -> None:
        for server, weight in (("stable", stable), ("canary", canary)):
            assert await self.admin(f"set weight {BACKEND}/{server} {weight}") == ""

    async def send(self, count: int) -> Counter[str]:
        """Send `count` GETs one after another; count `<status> <body>`, or the error name."""
        return await send_gets(self.url, count, count_errors=True)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sg-haproxy-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_haproxy(
    tmp_path: Path, socket_dir: Path, upstreams: dict[str, Upstream]
) -> Iterator[Callable[..., HAProxyStack]]:
    """Start HAProxys (stable → the `stable` upstream at weight 100, canary → `canary` at 0,
    runtime API on a unix socket and on TCP); all are stopped by PID in teardown.

    `slots` above 1 gives each arm that many server slots (stable1 ... in use, the rest in
    maintenance) instead of the one-server config."""
    if haproxy_binary() is None:
        pytest.skip(f"haproxy is not installed: {INSTALL_HINT}")
    started: list[HAProxyStack] = []

    def start(balance: str = "roundrobin", slots: int = 1) -> HAProxyStack:
        n = len(started)
        stack = HAProxyStack(
            directory=tmp_path / f"haproxy-{n}",
            socket_dir=socket_dir / str(n),
            listen_port=free_port(),
            metrics_port=free_port(),
            log_dir=tmp_path / "logs",
            runtime_port=free_port(),
            balance=balance,
            slots=slots,
        )
        started.append(stack)
        stack.socket_dir.mkdir()
        stack.start(stable=upstreams["stable"].address, canary=upstreams["canary"].address)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.stop()


@pytest.fixture
def haproxy(start_haproxy: Callable[..., HAProxyStack]) -> HAProxyStack:
    """One running HAProxy (roundrobin) in front of the test upstreams."""
    return start_haproxy()
