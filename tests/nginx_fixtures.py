"""Fixtures for the nginx tests: a real, unprivileged nginx in front of the test upstreams.

Use from a test module with `pytest_plugins = ["tests.nginx_fixtures"]`; it brings the
`upstreams` fixture of tests/envoy_fixtures.py (stable, canary, other). Tests that need
nginx skip, saying how to install it, when the binary is missing. nginx is stopped by PID
in teardown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deploy.nginx import INSTALL_HINT, Nginx, nginx_binary
from deploy.processes import free_port
from sluicegate.spec import NginxRouter
from tests.traffic import send_gets

if TYPE_CHECKING:
    from tests.envoy_fixtures import Upstream

pytest_plugins = ["tests.envoy_fixtures"]


class NginxStack(Nginx):
    """A running nginx with helpers to drive it."""

    def spec(self, **overrides: str) -> NginxRouter:
        fields = {
            "upstream_file": str(self.upstream_file),
            "upstream": self.upstream,
            "main_config": str(self.main_config),
            **overrides,
        }
        return NginxRouter.model_validate(fields)

    async def send(self, count: int) -> Counter[str]:
        """Send `count` GETs through nginx one after another; count `<status> <body>`."""
        return await send_gets(self.url, count)


@pytest.fixture
def nginx(tmp_path: Path, upstreams: dict[str, Upstream]) -> Iterator[NginxStack]:
    """nginx with the stable server → `stable` upstream, canary (down, 0%) → `canary`."""
    if nginx_binary() is None:
        pytest.skip(f"nginx is not installed: {INSTALL_HINT}")
    stack = NginxStack(tmp_path / "nginx", free_port(), tmp_path / "logs")
    try:
        stack.start(stable=upstreams["stable"].address, canary=upstreams["canary"].address)
        yield stack
    finally:
        stack.stop()
