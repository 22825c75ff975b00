"""The http hook: POST the hook context as JSON; any 2xx answer passes.

No answer, 5xx, 408 and 429 are tried again (up to the hook's `attempts`, with short
pauses); any other answer is final. The first 4 KiB of the last answer's body are kept.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from activities.hooks.outcome import Ran
from activities.http import shared_client
from sluicegate.contracts.hooks import MAX_OUTPUT, HookContext
from sluicegate.spec import HttpHook

_TRY_AGAIN = (408, 429)


async def run_http(hook: HttpHook, context: HookContext) -> Ran:
    headers = {"content-type": "application/json", "x-sluicegate-hook": hook.name}
    if hook.token_env is not None:
        token = os.environ.get(hook.token_env)
        if not token:
            return Ran(
                ok=False,
                detail=f"environment variable {hook.token_env} (token_env) is not set on "
                "this worker",
                attempts=0,
            )
        headers["authorization"] = f"Bearer {token}"
    body = context.model_dump_json().encode()
    last = Ran(ok=False, detail="not attempted", attempts=0)
    http = shared_client()
    for attempt in range(1, hook.attempts + 1):
        if attempt > 1:
            await asyncio.sleep(hook.pause_before(attempt).total_seconds())
        last, final = await _attempt(http, hook, headers, body, attempt)
        if last.ok or final:
            break
    return last


async def _attempt(
    http: httpx.AsyncClient, hook: HttpHook, headers: dict[str, str], body: bytes, attempt: int
) -> tuple[Ran, bool]:
    """One POST within the hook's timeout; the outcome, and whether trying again is futile."""
    seconds = hook.timeout.total_seconds()
    try:
        async with asyncio.timeout(seconds):
            request = http.build_request(
                "POST", hook.url, content=body, headers=headers, timeout=seconds
            )
            response = await http.send(request, stream=True)
            try:
                text = await _head(response)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        return Ran(ok=False, detail=f"no answer within {seconds:g} s", attempts=attempt), False
    except httpx.HTTPError as err:
        problem = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return Ran(ok=False, detail=f"no answer: {problem}", attempts=attempt), False
    status = response.status_code
    first_line = text.strip().splitlines()[0] if text.strip() else "(empty body)"
    ok = response.is_success
    detail = f"HTTP {status}" if ok else f"HTTP {status}: {first_line}"
    final = ok or (status < 500 and status not in _TRY_AGAIN)
    return Ran(ok=ok, detail=detail, output=text, status=status, attempts=attempt), final


async def _head(response: httpx.Response) -> str:
    """The first MAX_OUTPUT bytes of the body, read no further."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= MAX_OUTPUT:
            break
    return kept[:MAX_OUTPUT].decode("utf-8", errors="replace")
