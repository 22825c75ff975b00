"""Webhook router: for platforms Sluicegate has no module for, routing over a small HTTP contract.

`GET <url>` answers the current RouterState as JSON; `POST <url>` with a RouterState sets
it (absolute, idempotent). Every apply is verified with a GET. See docs/routers/webhook.md.
"""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import httpx
from pydantic import ValidationError

from activities.http import Site
from activities.routers.base import ReadBackRouter
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable
from sluicegate.spec import WebhookRouter

_EXCERPT = 300  # characters of an error body quoted in the exception
_TRY_AGAIN = (408, 429)  # 4xx that say "later", not "wrong"


class WebhookRouterClient(ReadBackRouter[Site]):
    """Router that delegates to the platform's own endpoint, verified by read-back."""

    kind = "webhook"

    asked = "being sent"

    def __init__(self, spec: WebhookRouter) -> None:
        self.spec = spec

    @property
    def where(self) -> str:
        return f"webhook {self.spec.url}"

    async def _write(self, client: Site, desired: RouterState) -> None:
        """POST `desired` unless the platform already reports it."""
        if not (await self._read(client)).matches(desired):
            await self._send(client, "POST", json=desired.model_dump(mode="json"))

    def _connect(self) -> AbstractAsyncContextManager[Site]:
        headers = {"accept": "application/json"}
        if self.spec.token_env is not None:
            token = os.environ.get(self.spec.token_env)
            if not token:
                raise RouterMisconfigured(
                    f"webhook {self.spec.url}: environment variable {self.spec.token_env} "
                    "(router.token_env) is not set on this worker"
                )
            headers["authorization"] = f"Bearer {token}"
        return nullcontext(Site(str(self.spec.url), self.spec.timeout_seconds, headers))

    async def _read(self, client: Site) -> RouterState:
        """GET the URL: the platform's current routing."""
        response = await self._send(client, "GET")
        try:
            return RouterState.model_validate(response.json())
        except (ValueError, ValidationError) as err:
            raise RouterMisconfigured(
                f"webhook GET {self.spec.url} did not answer a RouterState "
                f"(canary_weight, stable_endpoints, canary_endpoints): {_short(err)}; "
                f"body: {_excerpt(response)}"
            ) from None

    async def _send(self, client: Site, method: str, **kwargs: Any) -> httpx.Response:
        """One request; 5xx, 408, 429 or no answer → RouterUnavailable; other non-2xx →
        RouterMisconfigured."""
        try:
            response = await client.request(method, **kwargs)
        except httpx.HTTPError as err:
            raise RouterUnavailable(f"webhook {method} {self.spec.url} failed: {err!r}") from err
        where = f"webhook {method} {self.spec.url} answered {response.status_code}"
        if response.status_code >= 500 or response.status_code in _TRY_AGAIN:
            raise RouterUnavailable(f"{where}: {_excerpt(response)}")
        if not response.is_success:
            raise RouterMisconfigured(f"{where}: {_excerpt(response)}")
        return response


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return (text[:_EXCERPT] + "…" if len(text) > _EXCERPT else text) or "(empty body)"


def _short(err: Exception) -> str:
    return " ".join(str(err).split())[:_EXCERPT]
