"""Waiting for a condition in tests: poll it with a deadline, never sleep a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


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
