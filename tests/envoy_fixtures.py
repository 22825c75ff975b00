"""Fixtures for the Envoy tests: real Envoy, tiny threaded upstreams, polling helpers.

Use from a test module with `pytest_plugins = ["tests.envoy_fixtures"]` (import the
classes only under TYPE_CHECKING, so pytest can load this module as a plugin itself).
Every process is stopped by PID in teardown; waiting polls with a deadline.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.envoy import Envoy
from deploy.processes import free_port
from tests.local_http import LocalServer, QuietHandler
from tests.traffic import send_gets


class Upstream(LocalServer):
    """An HTTP server on 127.0.0.1 answering GET with its name; can fail, stall or reset."""

    def __init__(self, name: str, poll_interval: float = 0.5) -> None:
        self.name = name
        self.status = 200
        self.delay = 0.0  # seconds to sleep before answering
        self.reset = False  # close the connection without answering
        super().__init__(self._handler(), poll_interval=poll_interval)

    def _handler(self) -> type[QuietHandler]:
        upstream = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if upstream.reset:
                    linger = struct.pack("ii", 1, 0)  # close = RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    return
                time.sleep(upstream.delay)
                body = upstream.name.encode()
                self.send_response(upstream.status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class EnvoyStack(Envoy):
    """A running Envoy in front of the test upstreams, with helpers to drive it."""

    async def send(self, count: int) -> Counter[str]:
        """Send `count` GETs through Envoy one after another; count `<status> <body>`."""
        return await send_gets(self.url, count)

    def set_weight(self, percent: int) -> None:
        """Set the canary share directly through the admin runtime."""
        url = f"{self.admin_url}/runtime_modify?sluicegate.canary_weight={percent}"
        httpx.post(url, timeout=2).raise_for_status()


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream]]:
    """Three upstreams named stable, canary and other."""
    servers = {name: Upstream(name) for name in ("stable", "canary", "other")}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture
def fleets() -> Iterator[dict[str, tuple[Upstream, ...]]]:
    """Versions of three endpoints each: stable-1..3, canary-1..3 and other-1..3."""
    servers = {
        # A short poll interval: closing nine servers must not take seconds.
        version: tuple(Upstream(f"{version}-{i}", poll_interval=0.05) for i in (1, 2, 3))
        for version in ("stable", "canary", "other")
    }
    yield servers
    for fleet in servers.values():
        for server in fleet:
            server.close()


@pytest.fixture
def envoy(tmp_path: Path, upstreams: dict[str, Upstream]) -> Iterator[EnvoyStack]:
    """Envoy with stable → the `stable` upstream and canary → the `canary` upstream."""
    stack = EnvoyStack(tmp_path / "envoy", free_port(), free_port(), tmp_path / "logs")
    stack.start(stable=upstreams["stable"].address, canary=upstreams["canary"].address)
    yield stack
    stack.stop()
