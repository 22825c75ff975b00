"""Lifecycle hooks: checks and actions a deployment runs at its turning points.

Three kinds, discriminated by `type`: `http` (POST the hook context to a URL), `command`
(run a command the WORKER's settings declare, by name) and `smoke` (a few GETs straight to
each canary endpoint). The `run_hook` activity runs one (activities/hooks/); a worker that
dies inside a hook makes it run again, so every hook must be idempotent. See docs/HOOKS.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sluicegate.spec.fields import EnvName, SpecModel, UrlWithPath

HookEvent = Literal["pre_rollout", "pre_stage", "post_promotion", "on_rollback", "smoke"]
"""When a hook runs: one of the `HooksSpec` lists, or `smoke` for the deployment's own
smoke checks."""

HookName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="the hook as the Web UI, the history and errors name it",
    ),
]
CommandName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="a command declared in the worker's settings ([commands.<name>])",
    ),
]
ArgumentName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z][a-z0-9_\-]*$",
        description="an argument the worker's settings declare for the command",
    ),
]

# Pauses between an http hook's attempts: 0.5 s, then 1 s, 2 s, 4 s.
FIRST_PAUSE = timedelta(seconds=0.5)
# What the activity needs beyond a hook's own time: starting, killing, reporting.
_SLACK = timedelta(seconds=10)


def _between(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    if not low <= value <= high:
        raise ValueError(
            f"must be {low.total_seconds():g} s to {high.total_seconds():g} s, "
            f"got {value.total_seconds():g} s"
        )
    return value


class HttpHook(SpecModel):
    """POST the hook context (JSON) to a URL; any 2xx answer passes."""

    type: Literal["http"] = Field(default="http", description="an HTTP hook")
    name: HookName
    url: UrlWithPath = Field(description="where the context is POSTed, e.g. https://ci/hooks/x")
    token_env: EnvName | None = Field(
        default=None,
        description="worker environment variable holding a bearer token for the request",
    )
    timeout: timedelta = Field(
        default=timedelta(seconds=30), description="how long one attempt may take, 1 s to 10 min"
    )
    attempts: int = Field(
        default=3,
        ge=1,
        le=5,
        description="attempts before the hook fails (no answer, 5xx, 408 or 429 try again)",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        return _between(value, timedelta(seconds=1), timedelta(minutes=10))

    def pause_before(self, attempt: int) -> timedelta:
        """The pause before attempt number `attempt` (2 or more): 0.5 s, doubling."""
        return FIRST_PAUSE * 2 ** (attempt - 2)

    def time_limit(self) -> timedelta:
        """The longest `run_hook` takes for this hook: a start-to-close timeout for it."""
        pauses = sum((self.pause_before(n) for n in range(2, self.attempts + 1)), timedelta(0))
        return self.timeout * self.attempts + pauses + _SLACK


class CommandHook(SpecModel):
    """Run a command the worker's settings declare, once; exit code 0 passes.

    The spec names the command and gives values for arguments the worker declares: it
    never carries a command line. No shell is involved.
    """

    type: Literal["command"] = Field(default="command", description="a worker command")
    name: HookName
    command: CommandName
    args: dict[ArgumentName, str] = Field(
        default_factory=dict,
        description="argument values, passed as --name=value; only names the worker declares",
    )
    timeout: timedelta = Field(
        default=timedelta(minutes=5),
        description="how long the command may run before its process group is killed, 1 s to 1 h",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        return _between(value, timedelta(seconds=1), timedelta(hours=1))

    @field_validator("args")
    @classmethod
    def _no_nul(cls, value: dict[str, str]) -> dict[str, str]:
        if bad := sorted(name for name, given in value.items() if "\x00" in given):
            raise ValueError(f"argument values cannot contain a NUL character: {', '.join(bad)}")
        return value

    def time_limit(self) -> timedelta:
        """The longest `run_hook` takes for this hook: a start-to-close timeout for it."""
        return self.timeout + _SLACK


class SmokeHook(SpecModel):
    """A few GETs straight to each canary endpoint (host:port over http, bypassing the
    router); passes when every request meets every expectation."""

    type: Literal["smoke"] = Field(default="smoke", description="the built-in smoke check")
    name: HookName
    requests: int = Field(
        default=10, ge=1, le=100, description="requests to each endpoint, one after another"
    )
    path: str = Field(
        default="/",
        pattern=r"^/\S*$",
        max_length=2000,
        description="path (and query) requested, starting with /",
    )
    expect_status: int = Field(
        default=200, ge=100, le=599, description="the HTTP status every answer must have"
    )
    body_contains: str | None = Field(
        default=None,
        min_length=1,
        description="text every answer's body must contain (in its first MiB)",
    )
    max_latency: timedelta = Field(
        default=timedelta(seconds=1),
        description="the longest one request may take, answer included, 1 ms to 60 s; a "
        "slower request is abandoned and fails",
    )
    timeout: timedelta = Field(
        default=timedelta(seconds=60),
        description="how long the whole check may take, 1 s to 10 min; requests not sent "
        "by then fail",
    )

    @field_validator("max_latency")
    @classmethod
    def _max_latency(cls, value: timedelta) -> timedelta:
        return _between(value, timedelta(milliseconds=1), timedelta(seconds=60))

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        return _between(value, timedelta(seconds=1), timedelta(minutes=10))

    def time_limit(self) -> timedelta:
        """The longest `run_hook` takes for this hook: a start-to-close timeout for it."""
        return self.timeout + self.max_latency + _SLACK


HookSpec = Annotated[HttpHook | CommandHook | SmokeHook, Field(discriminator="type")]


class HooksSpec(SpecModel):
    """The hooks of each turning point of a deployment, run in the order listed."""

    pre_rollout: tuple[HookSpec, ...] = Field(
        default=(), description="after the backup, before any traffic moves"
    )
    pre_stage: tuple[HookSpec, ...] = Field(
        default=(), description="before each stage's weight is applied"
    )
    post_promotion: tuple[HookSpec, ...] = Field(
        default=(), description="once the canary serves all traffic"
    )
    on_rollback: tuple[HookSpec, ...] = Field(
        default=(), description="once the backup is restored after a rollback"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> HooksSpec:
        problems: list[str] = []
        for event in ("pre_rollout", "pre_stage", "post_promotion", "on_rollback"):
            names = [hook.name for hook in self.at(event)]
            if repeated := sorted({name for name in names if names.count(name) > 1}):
                problems.append(f"{event}: hook names must be unique, got {', '.join(repeated)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def at(self, event: HookEvent) -> tuple[HookSpec, ...]:
        """The hooks of one turning point (none for `smoke`, which is not a list here)."""
        hooks: tuple[HookSpec, ...] = getattr(self, event, ()) if event != "smoke" else ()
        return hooks
