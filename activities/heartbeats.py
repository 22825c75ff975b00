"""Waiting inside an activity without going quiet: a cancelled activity only learns of it
through a heartbeat."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.client import AsyncActivityCancelledError
from temporalio.service import RPCError, RPCStatusCode

HEARTBEAT_EVERY = 0.5  # seconds; how soon a cancelled activity notices
P = ParamSpec("P")
R = TypeVar("R")


async def sleep_heartbeating(
    deadline: float, *details: Any, every: float = HEARTBEAT_EVERY
) -> None:
    """Sleep until `deadline` (time.monotonic), heartbeating `details` as it begins and
    then every `every` seconds before the deadline."""
    while True:
        activity.heartbeat(*details)
        left = deadline - time.monotonic()
        if left <= every:
            await asyncio.sleep(max(left, 0))
            return
        await asyncio.sleep(every)


async def stop_requested(*details: Any) -> str | None:
    """Why this activity must stop now, asked of the server (a heartbeat recording
    `details`): its workflow cancelled it, or Temporal cannot say. None: it goes on.

    The worker's own heartbeats are throttled, so the worker may hear of a cancel only a
    heartbeat later; an activity about to change something outside asks first.
    """
    info = activity.info()
    handle = activity.client().get_async_activity_handle(task_token=info.task_token)
    try:
        await handle.heartbeat(*details)
    except AsyncActivityCancelledError:
        return "its workflow has moved on"
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return f"its workflow has moved on: {err}"
        return f"Temporal cannot confirm it goes on: {err}"
    return None


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
