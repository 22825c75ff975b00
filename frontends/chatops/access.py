"""Who may do what (pure): Slack users and groups per service and action, and API token scopes.

A service's own entry for an action wins over the `"*"` entry; `status` is open to the
whole workspace unless an entry says otherwise; anything else without an entry is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sluicegate.chatops_settings import EVERYONE, ApiToken, ChatAction, Rule

OPEN = Rule(users=(EVERYONE,))
Access = Mapping[str, Mapping[ChatAction, Rule]]


@dataclass(frozen=True)
class Grant:
    """The rule that governs one action on one service, and where it is configured."""

    rule: Rule | None
    source: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    why: str


def grant_for(access: Access, service: str, action: ChatAction) -> Grant:
    for key in (service, EVERYONE):
        rule = access.get(key, {}).get(action)
        if rule is not None:
            return Grant(rule, f"[chatops.access.{_toml_key(key)}] {action}")
    if action == "status":
        return Grant(OPEN, "the default: status is open to the workspace")
    return Grant(None, "")


def groups_to_check(access: Access, service: str, action: ChatAction) -> tuple[str, ...]:
    """The user groups whose members may take `action` on `service` (to look up)."""
    rule = grant_for(access, service, action).rule
    return rule.groups if rule is not None else ()


def decide(
    access: Access, service: str, action: ChatAction, user: str, member_of: Collection[str] = ()
) -> Decision:
    """May Slack `user` (a member of the groups `member_of`) take `action` on `service`?"""
    grant = grant_for(access, service, action)
    rule = grant.rule
    if rule is None:
        return Decision(
            False,
            f"nobody may {action} {service} from chat: neither [chatops.access.{service}] "
            f'nor [chatops.access."*"] has a rule for {action}; an admin can add e.g. '
            f'`{action} = {{ users = ["{user}"] }}` to one of them',
        )
    if EVERYONE in rule.users or user in rule.users:
        return Decision(True, f"allowed by {grant.source}")
    if groups := [group for group in rule.groups if group in member_of]:
        return Decision(True, f"allowed by {grant.source} (member of {groups[0]})")
    return Decision(
        False,
        f"<@{user}> may not {action} {service}: {grant.source} allows "
        f"{_who(rule)} only; an admin can add {user} (or one of its groups) there",
    )


def _who(rule: Rule) -> str:
    parts: list[str] = []
    if rule.users:
        parts.append("users " + ", ".join(rule.users))
    if rule.groups:
        parts.append("groups " + ", ".join(rule.groups))
    return " and ".join(parts) or "nobody"


def _toml_key(key: str) -> str:
    return f'"{key}"' if key == EVERYONE else key


def token_digest(token: str) -> str:
    """How a token is configured: the hex sha256 of its UTF-8 text."""
    return hashlib.sha256(token.encode()).hexdigest()


def find_token(tokens: Iterable[ApiToken], presented: str) -> ApiToken | None:
    """The configured token whose sha256 matches `presented`, compared in constant time."""
    digest = token_digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(token.sha256, digest):
            found = token
    return found


def token_refusal(token: ApiToken, service: str, action: ChatAction) -> str | None:
    """Why `token` may not take `action` on `service`, naming the missing scope; or None."""
    if EVERYONE not in token.services and service not in token.services:
        return (
            f"token {token.name!r} may not act on service {service!r}: its services are "
            f"{', '.join(token.services)}; add {service!r} to its services to allow it"
        )
    if EVERYONE not in token.actions and action not in token.actions:
        return (
            f"token {token.name!r} may not {action}: its actions are "
            f"{', '.join(token.actions)}; add {action!r} to its actions to allow it"
        )
    return None
