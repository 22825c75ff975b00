"""Waiting inside an activity without going quiet: a cancelled activity only learns of it
through a heartbeat."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import activity

HEARTBEAT_EVERY = 0.5  # seconds; how soon a cancelled activity notices


async def sleep_heartbeating(deadline: float, *details: Any) -> None:
    """Sleep until `deadline` (time.monotonic), heartbeating `details` on the way."""
    while (left := deadline - time.monotonic()) > 0:
        activity.heartbeat(*details)
        await asyncio.sleep(min(left, HEARTBEAT_EVERY))
