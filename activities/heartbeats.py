"""Waiting inside an activity without going quiet: a cancelled activity only learns of it
through a heartbeat."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from temporalio import activity

HEARTBEAT_EVERY = 0.5  # seconds; how soon a cancelled activity notices
P = ParamSpec("P")
R = TypeVar("R")


async def sleep_heartbeating(deadline: float, *details: Any) -> None:
    """Sleep until `deadline` (time.monotonic), heartbeating `details` on the way."""
    while (left := deadline - time.monotonic()) > 0:
        activity.heartbeat(*details)
        await asyncio.sleep(min(left, HEARTBEAT_EVERY))


def heartbeating(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Heartbeat while `fn` runs, so a worker that dies mid-call is noticed within the
    activity's heartbeat timeout rather than its much longer start-to-close timeout."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        beating = asyncio.create_task(_beat())
        try:
            return await fn(*args, **kwargs)
        finally:
            beating.cancel()

    return wrapper


async def _beat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY)
