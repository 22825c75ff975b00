"""One HTTP connection pool per worker process, shared by the routers, the metric sources
that ask one server per check, http hooks and notifications.

The HTTP probe and smoke checks keep clients of their own: they aim many requests at a
canary that may hang, and must not hold the shared connections while it does.

A check costs its requests, not a new client: building an httpx client builds a TLS
context, and at 200 deployments that alone took half of the worker's CPU. The pool is
aiohttp's, under httpx's API (`AiohttpTransport`): httpcore's pool looks through every pooled
connection and every waiting request each time a request starts or ends, which cost 1-5 ms
of CPU per request when hundreds of checks came due together; aiohttp's costs 0.3 ms
(docs/BENCHMARKS.md, "Scale"). Each caller still has its own base URL, headers, auth and
timeout: they go with each request (`Site`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

# At most 64 connections to one host, so that a slow server (a loaded Prometheus answering
# a thousand checks) holds at most 64 of the 256 and a rollback's router call still finds
# one. Kept alive 4 s, sooner than common servers' keep-alive timeouts (uvicorn 5 s, nginx
# 75 s), so a request rarely meets a connection the server is closing. A request waits for
# a free connection at most its timeout's `pool` part (httpx: the whole timeout by default).
MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_HOST = 64
KEEPALIVE_S = 4.0
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def shared_client() -> httpx.AsyncClient:
    """The pool of the running event loop (the worker has one; tests may have several)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            transport=AiohttpTransport(),
            timeout=DEFAULT_TIMEOUT,
            follow_redirects=False,
        )
        _clients[loop] = client
    return client


async def close_shared_client() -> None:
    """Close the running loop's pool (a worker shutting down)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests sent through an aiohttp connection pool, each answer read whole (every
    caller reads it whole). aiohttp's errors become httpx's, so callers catch one kind."""

    def __init__(
        self,
        limit: int = MAX_CONNECTIONS,
        limit_per_host: int = MAX_CONNECTIONS_PER_HOST,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._limit, self._limit_per_host, self._keepalive_s = limit, limit_per_host, keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use, in the event loop that uses it
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=self._keepalive_s,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        started = time.monotonic()
        try:
            async with self._pool().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, as its own pool's answers
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),  # includes waiting for a free connection
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as answer:
                body = await answer.read()
        except aiohttp.ConnectionTimeoutError as err:
            pool = timeout.get("pool")
            if pool is not None and time.monotonic() - started >= pool:
                # aiohttp's `connect` timeout covers the wait for a free connection too.
                raise httpx.PoolTimeout(
                    f"no connection to {request.url.host}:{request.url.port} within {pool:g} s: "
                    f"all {self._limit_per_host} of this worker's connections to it were busy, "
                    "or connecting took the rest",
                    request=request,
                ) from err
            raise httpx.ConnectTimeout(str(err) or "connect timed out", request=request) from err
        except (aiohttp.SocketTimeoutError, TimeoutError) as err:
            raise httpx.ReadTimeout(str(err) or "read timed out", request=request) from err
        except aiohttp.ClientConnectorError as err:
            raise httpx.ConnectError(str(err), request=request) from err
        except aiohttp.ServerDisconnectedError as err:
            raise httpx.RemoteProtocolError(str(err), request=request) from err
        except (aiohttp.ClientError, OSError) as err:
            raise httpx.ReadError(str(err) or type(err).__name__, request=request) from err
        return httpx.Response(
            answer.status, headers=answer.raw_headers, content=body, request=request
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass(frozen=True)
class Site:
    """Requests to one base URL through the shared pool, with this caller's headers, auth
    and timeout. `path` is appended to `base_url` as it is (`""` asks the base URL itself)."""

    base_url: str
    timeout: httpx.Timeout | float = field(default_factory=lambda: DEFAULT_TIMEOUT)
    headers: Mapping[str, str] = field(default_factory=dict[str, str])
    auth: httpx.Auth | None = None

    async def request(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return await shared_client().request(
            method,
            self.base_url.rstrip("/") + path if path else self.base_url,
            headers=self.headers,
            auth=self.auth or httpx.USE_CLIENT_DEFAULT,
            timeout=self.timeout,
            **kwargs,
        )

    async def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)


__all__ = ["Site", "close_shared_client", "shared_client"]
