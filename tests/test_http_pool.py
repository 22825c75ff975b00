"""The worker's shared HTTP pool: httpx's API over aiohttp's pool, with httpx's errors."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from activities.http import AiohttpTransport, Site, shared_client
from deploy.processes import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    """Answers each request with its request line and headers, gzipped."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = gzip.compress(head + await reader.readexactly(length))
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()

    server, url = await _serve(handler)
    try:
        yield url
    finally:
        server.close()


async def test_a_request_carries_its_headers_auth_and_body(echo: str) -> None:
    site = Site(echo, 5.0, {"X-Team": "payments"}, httpx.BasicAuth("ops", "secret"))
    answer = await site.post("/routes", params={"stage": "5"}, json={"weight": 5})
    assert answer.status_code == 201
    seen = answer.text  # decoded from gzip, as httpx's own pool does
    assert seen.startswith("POST /routes?stage=5 HTTP/1.1")
    assert "x-team: payments" in seen.lower()
    assert "authorization: Basic b3BzOnNlY3JldA==" in seen
    assert seen.endswith('{"weight":5}')


async def test_requests_share_one_pool(echo: str) -> None:
    await asyncio.gather(*(Site(echo).get(f"/{n}") for n in range(20)))
    assert shared_client() is shared_client()


async def test_nothing_listening_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        await Site(f"http://127.0.0.1:{free_port()}", 5.0).get()


async def test_a_server_that_does_not_answer_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up

    server, url = await _serve(silent)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await Site(url, httpx.Timeout(0.5, connect=2.0)).get()
    finally:
        server.close()


async def test_a_server_that_hangs_up_is_a_protocol_error() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, url = await _serve(rude)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            await Site(url, 5.0).get()
    finally:
        server.close()


async def test_a_busy_host_holds_only_its_own_connections(echo: str) -> None:
    """A slow server (a loaded Prometheus) cannot take the connections a router call needs,
    and a request that finds none of its host's free says so."""
    arrived, release = asyncio.Semaphore(0), asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            arrived.release()
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    server, slow = await _serve(held)
    client = httpx.AsyncClient(transport=AiohttpTransport(limit=3, limit_per_host=2))
    try:
        busy = [asyncio.create_task(client.get(slow, timeout=30.0)) for _ in range(3)]
        for _ in range(2):  # the third waits for one of the two
            await arrived.acquire()
        assert (await client.get(echo, timeout=httpx.Timeout(5.0, pool=2.0))).status_code == 201
        port = slow.rpartition(":")[2]
        with pytest.raises(httpx.PoolTimeout, match=f"127.0.0.1:{port} within 0.3 s: all 2 "):
            await client.get(slow, timeout=httpx.Timeout(5.0, pool=0.3))
        release.set()
        assert [answer.status_code for answer in await asyncio.gather(*busy)] == [200] * 3
    finally:
        release.set()
        await client.aclose()
        server.close()
