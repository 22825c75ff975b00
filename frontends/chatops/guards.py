"""Request guards kept in memory: the Slack replay guard and per-caller rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import parse as parse_rate
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

REPLAY_WINDOW = 5 * 60  # seconds: Slack's timestamps older than this are refused anyway


class ReplayGuard:
    """Remembers the signatures of accepted requests for 5 minutes; a repeat is a replay."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}

    def first_time(self, signature: str) -> bool:
        """True (and remembered) the first time `signature` is seen within the window."""
        now = self._clock()
        self._seen = {sig: until for sig, until in self._seen.items() if until > now}
        if signature in self._seen:
            return False
        self._seen[signature] = now + REPLAY_WINDOW
        return True


class RateLimit:
    """`rate` (e.g. "20/minute") per caller, over a moving window."""

    def __init__(self, rate: str) -> None:
        self.rate = rate
        self._item = parse_rate(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def allow(self, caller: str) -> bool:
        return await self._limiter.hit(self._item, caller)

    @property
    def retry_after(self) -> int:
        """Seconds to wait before retrying, at most: one window."""
        return self._item.get_expiry()
