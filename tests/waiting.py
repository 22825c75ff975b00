"""Waiting for a condition in tests: poll it with a deadline, never sleep a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from activities.metrics.base import MetricSource
    from sluicegate.analysis.samples import Sample


async def eventually(check: Callable[[], object], what: str, attempts: int = 600) -> None:
    """Await `check()` (sync or async) until it is truthy; fail naming `what`."""
    for _ in range(attempts):
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def sample_until(
    source: MetricSource, ready: Callable[[Sample], bool], timeout: float = 5.0
) -> Sample:
    """Collect from `source` until `ready` holds (counters land as requests end); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        sample = await source.collect()
        if ready(sample):
            return sample
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout} s: {sample}")
        await asyncio.sleep(0.05)
