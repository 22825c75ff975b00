"""Members of Slack user groups (`usergroups.users.list`), cached briefly."""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

log = logging.getLogger(__name__)


class GroupLookupFailed(Exception):
    """Slack could not say who is in a group."""


class UserGroups:
    """Looks up who is in a user group; answers are kept for `ttl` seconds."""

    def __init__(self, token: str, api_url: str, ttl: float) -> None:
        # The synchronous client, in a thread: the async one would need aiohttp. A short
        # timeout, as the lookup happens before the answer Slack wants within 3 s.
        self._client = WebClient(token=token, base_url=api_url, timeout=2)
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        cached = self._cache.get(group)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            # slack_sdk leaves the method's **kwargs unannotated; its result is a SlackResponse.
            response = await asyncio.to_thread(
                self._client.usergroups_users_list,  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                usergroup=group,
            )
        except SlackApiError as err:
            refusal: SlackResponse = err.response  # slack_sdk leaves `response` unannotated
            raise GroupLookupFailed(f"Slack refused: {refusal.get('error')}") from None
        except (SlackClientError, OSError) as err:
            raise GroupLookupFailed(f"Slack unreachable: {err}") from None
        users = frozenset(response.get("users") or ())
        self._cache[group] = (time.monotonic() + self._ttl, users)
        return users

    async def member_of(self, user: str, groups: tuple[str, ...]) -> frozenset[str]:
        """Which of `groups` `user` is in; a group Slack cannot answer for counts as not."""
        found: set[str] = set()
        for group in groups:
            try:
                if user in await self.members(group):
                    found.add(group)
            except GroupLookupFailed as err:
                log.warning("cannot list the members of Slack group %s: %s", group, err)
        return frozenset(found)
