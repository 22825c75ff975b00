"""The tests' traffic helper rides out a keep-alive connection closed under a request.

nginx's graceful reload closes idle keep-alive connections; when that lands just as the
next GET goes out on one, the GET gets no answer (it failed a clean clone's run once).
Real nginx cannot be made to hit that instant on purpose, so a small TCP peer does exactly
it: it answers the first request, then closes the connection when the second arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.traffic import send_gets

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nstable"


async def _answer_once_then_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")  # the next request on the kept-alive connection
    writer.close()  # ... closed unanswered, as a reloading proxy's old worker does


@pytest.fixture
async def closing_peer() -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer_once_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_get_on_a_connection_closed_under_it_is_sent_again(closing_peer: str) -> None:
    assert await send_gets(closing_peer, 3) == {"200 stable": 3}


async def test_counting_errors_still_counts_it(closing_peer: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        answers = await send_gets(closing_peer, 2, count_errors=True, client=client)
    assert answers == {"200 stable": 1, "RemoteProtocolError": 1}
