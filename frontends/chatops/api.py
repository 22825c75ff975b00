"""The HTTP control API for scripts and other chat systems: bearer tokens, JSON in and out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from frontends.chatops.access import find_token, token_refusal
from frontends.chatops.commands import Command
from frontends.chatops.controls import Controls, Kind
from frontends.chatops.guards import RateLimit
from sluicegate.chatops_settings import ACTIONS, ApiToken, ChatAction
from sluicegate.contracts import MAX_REASON
from sluicegate.spec import service_name_problem

HTTP_STATUS: dict[Kind, int] = {
    "ok": 200,
    "refused": 409,
    "not_found": 404,
    "invalid": 422,
    "unavailable": 503,
    "error": 500,
}
POST_ACTIONS = tuple(action for action in ACTIONS if action != "status")


class ControlRequest(BaseModel):
    """The JSON body of `POST /api/v1/services/{service}/{action}` (it may be empty)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="", max_length=MAX_REASON)
    full: bool = Field(default=False, description="promote only: skip to 100%")


class ControlApi:
    """`GET /api/v1/services/{service}` and `POST /api/v1/services/{service}/{action}`."""

    def __init__(self, tokens: Sequence[ApiToken], controls: Controls, limit: RateLimit) -> None:
        self._tokens = tokens
        self._controls = controls
        self._limit = limit

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/services/{service}", self.status, methods=["GET"]),
            Route("/api/v1/services/{service}/{action}", self.control, methods=["POST"]),
        ]

    async def status(self, request: Request) -> Response:
        return await self._handle(request, "status", ControlRequest())

    async def control(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in POST_ACTIONS:
            return error(
                404,
                f"unknown action {action!r}; POST one of {', '.join(POST_ACTIONS)} "
                "(status is GET /api/v1/services/{service})",
            )
        body = await request.body()
        try:
            data: object = json.loads(body) if body.strip() else {}
            fields = ControlRequest.model_validate(data)
        except ValueError as err:  # JSONDecodeError and ValidationError are ValueErrors
            return error(422, _body_problem(err))
        if fields.full and action != "promote":
            return error(422, f"full: only promote takes full, not {action}")
        return await self._handle(request, cast(ChatAction, action), fields)

    async def _handle(
        self, request: Request, action: ChatAction, fields: ControlRequest
    ) -> Response:
        token = self._caller(request)
        if isinstance(token, Response):
            return token
        if not await self._limit.allow(f"api:{token.name}"):
            retry = str(self._limit.retry_after)
            message = f"rate limited: at most {self._limit.rate} per token"
            return error(429, message, headers={"Retry-After": retry})
        service = request.path_params["service"]
        if problem := service_name_problem(service):
            return error(422, f"service: {problem}")
        if refusal := token_refusal(token, service, action):
            return error(403, refusal)
        command = Command(action=action, service=service, reason=fields.reason, full=fields.full)
        by = f"api:{token.name}"
        outcome = await self._controls.execute(command, by, "the API")
        base: dict[str, Any] = {"ok": outcome.ok, "service": service, "action": action, "by": by}
        if outcome.ok:
            return JSONResponse({**base, "message": outcome.message, **outcome.data})
        return JSONResponse({**base, "error": outcome.message}, HTTP_STATUS[outcome.kind])

    def _caller(self, request: Request) -> ApiToken | Response:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not presented.strip():
            return error(401, "missing token: send `Authorization: Bearer <token>`", challenge)
        token = find_token(self._tokens, presented.strip())
        if token is None:
            return error(401, "unknown token", challenge)
        return token


def error(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=code, headers=headers)


def _body_problem(err: ValueError) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in err.errors()
        )
    return f'body: malformed JSON ({err}); send e.g. {{"reason": "...", "full": false}}'
