"""Slack: `/deploy` slash commands and notification buttons, verified, authorized, answered.

Slack wants an answer within 3 s, so a command is acknowledged at once and its real
outcome (the new status, or the deployment's refusal) is posted to the request's
`response_url` in the channel, naming who did it. Refusals before that are ephemeral.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx
from pydantic import ValidationError
from slack_sdk.signature import SignatureVerifier
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from frontends.chatops.access import decide, groups_to_check
from frontends.chatops.commands import Command, UsageError, parse
from frontends.chatops.controls import Controls
from frontends.chatops.groups import UserGroups
from frontends.chatops.guards import REPLAY_WINDOW, RateLimit, ReplayGuard
from sluicegate.chatops_settings import ChatAction, ChatOpsSettings
from sluicegate.notifications import BUTTON_ACTIONS, ButtonTarget

log = logging.getLogger(__name__)
PUBLIC = ("ok", "refused")  # outcomes the channel sees; the rest only the user


class SlackApp:
    """The `/slack/commands` and `/slack/interactions` endpoints."""

    def __init__(
        self,
        config: ChatOpsSettings,
        controls: Controls,
        limit: RateLimit,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.signing_secret is not None
        self._verifier = SignatureVerifier(config.signing_secret.get_secret_value())
        self._access = config.access
        self._controls = controls
        self._limit = limit
        self._http = http
        self._clock = clock
        self._replays = ReplayGuard()
        token = config.slack_bot_token
        self._groups = (
            UserGroups(token.get_secret_value(), config.slack_api_url, config.group_cache_seconds)
            if token is not None
            else None
        )

    def routes(self) -> list[Route]:
        return [
            Route("/slack/commands", self.command, methods=["POST"]),
            Route("/slack/interactions", self.interaction, methods=["POST"]),
        ]

    async def command(self, request: Request) -> Response:
        body = await request.body()
        if refusal := self.unverified(request.headers, body):
            return _unauthorized(refusal)
        form = _form(body)
        user, response_url = form.get("user_id"), form.get("response_url")
        if not user or not response_url:
            return _bad_request("a slash command needs user_id and response_url")
        if not await self._limit.allow(f"slack:{user}"):
            return _ephemeral(self._slow_down())
        try:
            command = parse(form.get("text", ""))
        except UsageError as err:
            return _ephemeral(str(err))
        if refusal := await self._refusal(command.service, command.action, user):
            return _ephemeral(f"refused: {refusal}")
        reply = BackgroundTask(
            self._run, command, user, form.get("user_name", ""), response_url, None
        )
        # An in-channel acknowledgement shows everyone the command; the outcome follows.
        return JSONResponse({"response_type": "in_channel"}, background=reply)

    async def interaction(self, request: Request) -> Response:
        body = await request.body()
        if refusal := self.unverified(request.headers, body):
            return _unauthorized(refusal)
        try:
            payload = json.loads(_form(body).get("payload", ""))
            kind = payload["type"]
        except (ValueError, TypeError, KeyError):
            return _bad_request("an interaction needs a JSON payload with a type")
        if kind != "block_actions":
            return Response(status_code=200)  # nothing of ours (e.g. a shortcut)
        try:
            user, name = _str(payload["user"], "id"), _user_name(payload["user"])
            response_url = _str(payload, "response_url")
            action_id = _str(payload["actions"][0], "action_id")
            value = _str(payload["actions"][0], "value")
        except (TypeError, KeyError, IndexError, ValueError):
            return _bad_request("block_actions needs user.id, response_url and actions[0]")
        if action_id not in BUTTON_ACTIONS:
            return self._tell(response_url, f"unknown button {action_id!r}")
        try:
            target = ButtonTarget.model_validate_json(value)
        except ValidationError:
            return self._tell(response_url, "this button does not name a deployment")
        if not await self._limit.allow(f"slack:{user}"):
            return self._tell(response_url, self._slow_down())
        action: ChatAction = "promote" if action_id == "promote" else "abort"
        if refusal := await self._refusal(target.service, action, user):
            return self._tell(response_url, f"refused: {refusal}")
        command = Command(action=action, service=target.service)
        reply = BackgroundTask(self._run, command, user, name, response_url, target.run_id)
        return Response(status_code=200, background=reply)

    def unverified(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is not from Slack (or is a replay), or None if it is."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "missing X-Slack-Signature or X-Slack-Request-Timestamp"
        try:
            sent = int(timestamp)
        except ValueError:
            return "malformed X-Slack-Request-Timestamp"
        if abs(self._clock() - sent) > REPLAY_WINDOW:
            return "stale request: its timestamp is more than 5 minutes away"
        try:
            valid = self._verifier.is_valid(body, timestamp, signature)
        except UnicodeDecodeError:
            valid = False
        if not valid:
            return "bad signature"
        if not self._replays.first_time(signature):
            return "replayed request: this signature was already used"
        return None

    async def _refusal(self, service: str, action: ChatAction, user: str) -> str | None:
        decision = decide(self._access, service, action, user)
        groups = groups_to_check(self._access, service, action)
        if not decision.allowed and groups and self._groups is not None:
            member_of = await self._groups.member_of(user, groups)
            decision = decide(self._access, service, action, user, member_of)
        return None if decision.allowed else decision.why

    async def _run(
        self, command: Command, user: str, name: str, response_url: str, run_id: str | None
    ) -> None:
        by = f"slack:{user} ({name[:80]})" if name else f"slack:{user}"
        outcome = await self._controls.execute(command, by, "Slack", run_id)
        what = f"{command.action} {command.service}" + (" --full" if command.full else "")
        text = f"<@{user}> {what}: {outcome.message}"
        await self._post(response_url, text, public=outcome.kind in PUBLIC)

    def _tell(self, response_url: str, text: str) -> Response:
        """Answer a button click only to the user who clicked (through `response_url`)."""
        return Response(status_code=200, background=BackgroundTask(self._post, response_url, text))

    async def _post(self, response_url: str, text: str, public: bool = False) -> None:
        message = {
            "response_type": "in_channel" if public else "ephemeral",
            "replace_original": False,
            "text": text,
        }
        try:
            answer = await self._http.post(response_url, json=message)
            if answer.status_code >= 300:
                log.warning("Slack refused the reply (%s): %s", answer.status_code, answer.text)
        except httpx.HTTPError as err:
            log.warning("cannot post the reply to Slack: %s", err)

    def _slow_down(self) -> str:
        return f"slow down: at most {self._limit.rate} per user; try again shortly"


def _form(body: bytes) -> dict[str, str]:
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _str(data: Any, key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _user_name(user: Any) -> str:
    name = user.get("username") or user.get("name") or ""
    return name if isinstance(name, str) else ""


def _ephemeral(text: str) -> JSONResponse:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def _unauthorized(why: str) -> JSONResponse:
    log.warning("refused a Slack request: %s", why)
    return JSONResponse({"ok": False, "error": why}, status_code=401)


def _bad_request(why: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": f"malformed Slack request: {why}"}, status_code=400)
