"""The chat-ops HTTP service: Slack and the control API in one Starlette app, under uvicorn."""

from __future__ import annotations

import logging
import socket

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from frontends.chatops.api import ControlApi, error
from frontends.chatops.controls import Controls
from frontends.chatops.guards import RateLimit
from frontends.chatops.reports import ReportPages
from frontends.chatops.slack import SlackApp
from sluicegate.errors import SluicegateError
from sluicegate.settings import Settings
from workers.client import connect
from workers.telemetry import CHATOPS, configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)


# A refused body is read and dropped up to this size before the 413; past it, the
# connection is closed on the sender.
DRAIN_LIMIT = 8 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse (413) a request body over `max_bytes`: by its Content-Length if it says so,
    else as soon as the bytes received pass the limit (a sender may lie or stream)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send, body_done=False)
            return
        received = 0
        started = False
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            received += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, body_done)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, body_done: bool) -> None:
        if not body_done:
            await _drain(receive, DRAIN_LIMIT)
        message = f"request body too large: at most {self.max_bytes} bytes"
        await error(413, message, headers={"Connection": "close"})(scope, receive, send)


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of a refused body (up to `limit` bytes), so the client has
    sent it all and can read the 413 instead of finding the connection reset."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        drained += len(message.get("body", b""))


def build_app(settings: Settings, client: Client, http: httpx.AsyncClient) -> Starlette:
    """Slack routes if a signing secret is set, API routes if tokens are, report pages if
    the evidence store is on, and /healthz."""
    config = settings.chatops
    controls = Controls(client, settings.task_queue)
    limit = RateLimit(config.rate_limit)

    reports = settings.evidence_store is not None

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {"ok": True, "slack": config.serves_slack, "api": config.serves_api, "reports": reports}
        )

    routes = [Route("/healthz", healthz, methods=["GET"])]
    if config.serves_slack:
        routes += SlackApp(config, controls, limit, http).routes()
    if config.serves_api:
        routes += ControlApi(config.tokens, controls, limit).routes()
    if reports:
        routes += ReportPages(settings, config.tokens, limit).routes()
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit, max_bytes=config.max_body_bytes)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, f"no such endpoint: {request.method} {request.url.path}")
    if exc.status_code == 405:
        return error(405, f"{request.method} is not allowed on {request.url.path}")
    return error(exc.status_code, str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, "internal error; the chat-ops log has the details")


async def serve(settings: Settings, host: str, port: int) -> None:
    """Connect to Temporal and serve until SIGINT or SIGTERM; traces go out if the OTEL_*
    environment asks (each request's controls as spans of their own, linked to the
    deployment's trace)."""
    listener = _listen(host, port)
    configure_tracing(CHATOPS)
    try:
        client = await connect(settings, identity=f"sluice chatops@{socket.gethostname()}")
        async with httpx.AsyncClient(timeout=10) as http:
            app = build_app(settings, client, http)
            config = uvicorn.Config(app, lifespan="off", timeout_graceful_shutdown=30)
            log.info(
                "chat-ops on http://%s:%d (Slack: %s, API tokens: %d)",
                host,
                port,
                "yes" if settings.chatops.serves_slack else "no",
                len(settings.chatops.tokens),
            )
            await uvicorn.Server(config).serve(sockets=[listener])
    finally:
        shutdown_tracing()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear error."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError as err:
        raise SluicegateError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return listener
