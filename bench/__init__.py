"""Benchmarks on the local stack; see docs/BENCHMARKS.md.

    python -m bench.breach_to_safety   # canary failure -> Envoy at 0% canary, seconds
    python -m bench.history_length     # history events of one default-plan deployment

Shared here: a `Site` (one Envoy, two sample builds, steady load), polling, event names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from deploy.stack import LocalStack, Service, canary_spec
from sluicegate.spec import DeploymentSpec

STATE_ROOT = Path(__file__).resolve().parent.parent / ".state"
LOAD_RPS = 300


class Site:
    """One service's routing: its own Envoy, builds v1 and v2, steady load through Envoy."""

    def __init__(self, stack: LocalStack, name: str) -> None:
        self.v1 = stack.service("v1")
        self.v2 = stack.service("v2")
        self.envoy = stack.envoy(name, self.v1)
        self.load = stack.load(self.envoy, LOAD_RPS)
        self.backups = stack.state_dir / "backups"

    def spec(
        self, service: str, stable: Service, canary: Service, **overrides: object
    ) -> DeploymentSpec:
        """A spec deploying `canary` over `stable`, checks needing 10 canary requests."""
        return canary_spec(
            service,
            self.envoy,
            stable,
            canary,
            backup_dir=self.backups,
            min_requests=10,
            **overrides,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        """Stop the load and Envoy (the stack stops the services)."""
        self.load.stop()
        self.envoy.stop()


async def until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60, poll: float = 0.05
) -> None:
    """Await `check()` until it is true; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"never happened within {timeout:g} s: {what}")
        await asyncio.sleep(poll)


def event_name(event: HistoryEvent) -> str:
    """`ActivityTaskScheduled`-style name of a history event's type."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def event_seconds(event: HistoryEvent) -> float:
    """The event's server timestamp as Unix seconds."""
    return event.event_time.ToNanoseconds() / 1e9
