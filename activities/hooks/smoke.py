"""The smoke hook: `requests` GETs to each endpoint (http://host:port/path, bypassing the
router), one after another per endpoint, every endpoint at once.

A request passes when its answer, body included, arrives within `max_latency` with the
expected status and, if asked, the expected text in its first MiB. A slower request is
abandoned; requests not sent before the check's `timeout` fail too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from activities.hooks.outcome import Ran
from sluicegate.spec import SmokeHook

MAX_BODY = 1 << 20  # bytes of a body searched for `body_contains`
SHOWN_FAILURES = 5  # failures quoted in the evidence


@dataclass
class _Tally:
    """One endpoint's requests: how many failed, the first failures, the slowest answer."""

    endpoint: str
    failed: int = 0
    failures: list[str] = field(default_factory=list[str])
    slowest: float = 0.0

    def fail(self, problem: str, count: int = 1) -> None:
        self.failed += count
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append(f"{self.endpoint}: {problem}")


async def run_smoke(hook: SmokeHook, endpoints: Sequence[str]) -> Ran:
    if not endpoints:
        return Ran(ok=False, detail="no endpoints to check", attempts=0)
    deadline = time.monotonic() + hook.timeout.total_seconds()
    async with httpx.AsyncClient(follow_redirects=False) as http:
        tallies = await asyncio.gather(
            *(_check(http, hook, endpoint, deadline) for endpoint in endpoints)
        )
    total = hook.requests * len(endpoints)
    where = f"{len(endpoints)} endpoint{'s' if len(endpoints) > 1 else ''}"
    failed = sum(tally.failed for tally in tallies)
    summary = [f"{t.endpoint}: {t.failed} of {hook.requests} failed" for t in tallies]
    if not failed:
        slowest = max(tally.slowest for tally in tallies) * 1000
        return Ran(
            ok=True,
            detail=f"{total} requests to {where} passed (slowest {slowest:.0f} ms)",
            output="\n".join(summary),
        )
    failures = [line for tally in tallies for line in tally.failures][:SHOWN_FAILURES]
    return Ran(
        ok=False,
        detail=f"{failed} of {total} requests to {where} failed; first: {failures[0]}",
        output="\n".join([*summary, "first failures:", *failures]),
    )


async def _check(
    http: httpx.AsyncClient, hook: SmokeHook, endpoint: str, deadline: float
) -> _Tally:
    tally = _Tally(endpoint)
    url = f"http://{endpoint}{hook.path}"
    for number in range(1, hook.requests + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            unsent = hook.requests - number + 1
            tally.fail(
                f"{unsent} requests not sent: the check's timeout "
                f"({hook.timeout.total_seconds():g} s) ran out",
                count=unsent,
            )
            break
        problem, seconds = await _request(http, hook, url, left)
        tally.slowest = max(tally.slowest, seconds)
        if problem is not None:
            tally.fail(f"request {number}: {problem}")
    return tally


async def _request(
    http: httpx.AsyncClient, hook: SmokeHook, url: str, left: float
) -> tuple[str | None, float]:
    """What was wrong with one GET (None if nothing), and how long it took."""
    limit = hook.max_latency.total_seconds()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(min(limit, left)):
            async with http.stream("GET", url, timeout=limit) as response:
                body = await _body(response)
    except (TimeoutError, httpx.TimeoutException):
        took = time.perf_counter() - started
        if left < limit:
            return f"the check's timeout ({hook.timeout.total_seconds():g} s) ran out", took
        return f"no complete answer within max_latency ({limit * 1000:g} ms)", took
    except httpx.HTTPError as err:
        problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return f"no answer: {problem}", time.perf_counter() - started
    took = time.perf_counter() - started
    if response.status_code != hook.expect_status:
        return f"HTTP {response.status_code} (expected {hook.expect_status})", took
    if hook.body_contains is not None and hook.body_contains.encode() not in body:
        return f"body does not contain {hook.body_contains!r}", took
    if took > limit:
        return f"took {took * 1000:.0f} ms, over max_latency ({limit * 1000:g} ms)", took
    return None, took


async def _body(response: httpx.Response) -> bytes:
    """The first MAX_BODY bytes of the body."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= MAX_BODY:
            break
    return bytes(kept[:MAX_BODY])
