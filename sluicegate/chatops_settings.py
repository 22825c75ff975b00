"""The `[chatops]` settings: Slack secrets, who may do what per service, API tokens, limits."""

from __future__ import annotations

import re
from typing import Literal, get_args

from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from sluicegate.spec import service_name_problem

ChatAction = Literal["status", "promote", "abort", "pause", "resume", "rollback"]
ACTIONS: tuple[ChatAction, ...] = get_args(ChatAction)
EVERYONE = "*"
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rule(_Model):
    """Who may take one action: Slack user ids (`*` for the whole workspace) and user groups."""

    users: tuple[str, ...] = Field(default=(), description='Slack user ids, or "*" for everyone')
    groups: tuple[str, ...] = Field(default=(), description="Slack user group ids (S...)")

    @field_validator("users")
    @classmethod
    def _user_ids(cls, users: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [user for user in users if user != EVERYONE and not _USER.match(user)]:
            raise ValueError(f'not Slack user ids (U... or W...) or "*": {", ".join(bad)}')
        return users

    @field_validator("groups")
    @classmethod
    def _group_ids(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [group for group in groups if not _GROUP.match(group)]:
            raise ValueError(f"not Slack user group ids (S...): {', '.join(bad)}")
        return groups


class ApiToken(_Model):
    """One bearer token of the HTTP API, known only by its sha256, and what it may do."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    sha256: str = Field(description="hex sha256 of the token; the token itself is never stored")
    services: tuple[str, ...] = Field(min_length=1, description='service names, or "*" for all')
    actions: tuple[ChatAction | Literal["*"], ...] = Field(min_length=1)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError(
                "must be the 64 lowercase hex digits of the token's sha256 "
                "(`sluice chatops-token NAME` prints one)"
            )
        return value

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: tuple[str, ...]) -> tuple[str, ...]:
        for service in services:
            if service != EVERYONE and (problem := service_name_problem(service)):
                raise ValueError(problem)
        return services


class ChatOpsSettings(_Model):
    """`[chatops]` in the settings file; SLUICEGATE_CHATOPS__<FIELD> in the environment."""

    signing_secret: SecretStr | None = Field(
        default=None, description="the Slack app's signing secret; needed to serve Slack"
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="bot token with usergroups:read; needed only for groups"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", pattern=r"^https?://", description="Slack Web API"
    )
    max_body_bytes: int = Field(default=65536, ge=1024, le=10 * 1024 * 1024)
    rate_limit: str = Field(default="20/minute", description="per Slack user and per API token")
    group_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    access: dict[str, dict[ChatAction, Rule]] = Field(
        default_factory=dict, description='per service (or "*"): action → who may'
    )
    tokens: tuple[ApiToken, ...] = ()

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ValueError:
            raise ValueError(
                f'{value!r} is not a rate; write e.g. "20/minute" or "5 per second"'
            ) from None
        return value

    @field_validator("access")
    @classmethod
    def _services(
        cls, access: dict[str, dict[ChatAction, Rule]]
    ) -> dict[str, dict[ChatAction, Rule]]:
        for service in access:
            if service != EVERYONE and (problem := service_name_problem(service)):
                raise ValueError(f'service {service!r}: {problem} (or "*" for every service)')
        return access

    @model_validator(mode="after")
    def _consistent(self) -> ChatOpsSettings:
        names = [token.name for token in self.tokens]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"tokens: names must be unique: {', '.join(repeated)}")
        digests = [token.sha256 for token in self.tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("tokens: two tokens have the same sha256")
        uses_groups = any(rule.groups for rules in self.access.values() for rule in rules.values())
        if uses_groups and self.slack_bot_token is None:
            raise ValueError(
                "access names Slack user groups, so slack_bot_token "
                "(scope usergroups:read) is needed to look up their members"
            )
        return self

    @property
    def serves_slack(self) -> bool:
        return self.signing_secret is not None and bool(self.signing_secret.get_secret_value())

    @property
    def serves_api(self) -> bool:
        return bool(self.tokens)
