"""`GET /reports/{service}/{run}`: a deployment's report page, for a link signed by a worker
(a notification's) or an API token allowed `status` on the service (docs/REPORTS.md)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from frontends.chatops.access import find_token, token_refusal
from frontends.chatops.api import error
from frontends.chatops.guards import RateLimit
from frontends.client.reports import deployment_evidence, page
from sluicegate.chatops_settings import ApiToken
from sluicegate.errors import DeploymentNotFound, SluicegateError
from sluicegate.settings import Settings
from sluicegate.spec import service_name_problem

# The page runs only its own inline scripts and styles and reaches nothing.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:",
    "Cache-Control": "private, max-age=60",
    "X-Content-Type-Options": "nosniff",
}


class ReportPages:
    """Report pages out of the evidence store of the settings."""

    def __init__(self, settings: Settings, tokens: Sequence[ApiToken], limit: RateLimit) -> None:
        self._settings = settings
        self._tokens = tokens
        self._limit = limit

    def routes(self) -> list[Route]:
        return [Route("/reports/{service}/{run}", self.page, methods=["GET"])]

    async def page(self, request: Request) -> Response:
        service, run = request.path_params["service"], request.path_params["run"]
        if problem := service_name_problem(service):
            return error(422, f"service: {problem}")
        if refusal := self._refusal(request, service, run):
            return refusal
        if not await self._limit.allow(f"report:{service}"):
            retry = str(self._limit.retry_after)
            return error(429, "rate limited: too many report pages", {"Retry-After": retry})
        try:
            evidence = await asyncio.to_thread(deployment_evidence, self._settings, service, run)
        except DeploymentNotFound as err:
            return error(404, str(err))
        except SluicegateError as err:  # the store is off or unavailable
            return error(503, str(err))
        html = await asyncio.to_thread(page, self._settings, evidence)
        return HTMLResponse(html, headers=PAGE_HEADERS)

    def _refusal(self, request: Request, service: str, run: str) -> Response | None:
        """None when the link's signature or the bearer token allows the page."""
        signature = request.query_params.get("signature", "")
        expected = self._settings.report_signature(service, run)
        if signature and expected and hmac.compare_digest(signature, expected):
            return None
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            why = "a bad signature" if signature else "no signature"
            return error(
                401,
                f"report pages need a link signed by a worker (this one has {why}) or "
                "`Authorization: Bearer <token>` of a token allowed status on the service",
                {"WWW-Authenticate": "Bearer"},
            )
        token = find_token(self._tokens, presented.strip())
        if token is None:
            return error(401, "unknown token", {"WWW-Authenticate": "Bearer"})
        if refusal := token_refusal(token, service, "status"):
            return error(403, refusal)
        return None
