"""Test traffic through a router: GETs sent one after another, their answers counted."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext

import httpx

# What a keep-alive connection that the proxy closed while idle gives the next request on
# it: a graceful reload (nginx -s reload, an Envoy drain) closes idle connections.
CLOSED_WHILE_IDLE = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


async def send_gets(
    url: str,
    count: int,
    *,
    count_errors: bool = False,
    client: httpx.AsyncClient | None = None,
) -> Counter[str]:
    """GET `url` `count` times in turn; count `<status> <body>` (or, if asked, error names).

    Without `count_errors`, a GET whose connection was closed under it is sent once more on
    a new connection, as a browser would: a reload is "not yet", not a failure."""
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) if client is None else nullcontext(client) as http:
        for _ in range(count):
            try:
                response = await _get(http, url, again=not count_errors)
            except httpx.TransportError as err:  # a reset upstream can cost the connection
                if not count_errors:
                    raise
                answers[type(err).__name__] += 1
            else:
                answers[f"{response.status_code} {response.text}"] += 1
    return answers


async def _get(client: httpx.AsyncClient, url: str, again: bool) -> httpx.Response:
    try:
        return await client.get(url)
    except CLOSED_WHILE_IDLE:
        if not again:
            raise
        return await client.get(url)  # the closed connection has left the pool
