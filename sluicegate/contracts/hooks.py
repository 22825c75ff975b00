"""The `run_hook` activity's input and result, and the context every hook is given.

`HookContext` is the documented JSON payload (docs/HOOKS.md): an http hook POSTs it, a
command hook reads it on stdin. Fields added after a release need defaults, so recorded
workflow histories still decode.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluicegate.spec.hooks import HookEvent, HookSpec

RUN_HOOK = "run_hook"
MAX_OUTPUT = 4096  # characters of evidence a HookResult keeps
MAX_DETAIL = 300  # characters of its one-line detail
_CUT = "…"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class HookContext(_Model):
    """Where the deployment is when a hook runs: the payload every hook receives."""

    service: str = Field(description="the service being deployed")
    stable_version: str = Field(description="the version serving today")
    canary_version: str = Field(description="the version being rolled out")
    event: HookEvent = Field(description="which turning point runs the hook")
    stage: str | None = Field(
        default=None, description="the stage about to start or running, if any"
    )
    weight: int = Field(ge=0, le=100, description="the canary's share of traffic now, 0-100")
    stable_endpoints: tuple[str, ...] = Field(description="host:port of every stable instance")
    canary_endpoints: tuple[str, ...] = Field(description="host:port of every canary instance")
    workflow_id: str = Field(description="the deployment's workflow id, deploy-<service>")
    run_id: str = Field(description="the deployment's run id: one per deployment attempt")


class RunHookInput(_Model):
    """Run one hook with the deployment's context."""

    hook: HookSpec
    context: HookContext
    endpoints: tuple[str, ...] = Field(
        default=(),
        description="host:port a smoke hook requests; empty: the context's canary endpoints",
    )

    @property
    def targets(self) -> tuple[str, ...]:
        """The endpoints a smoke hook checks."""
        return self.endpoints or self.context.canary_endpoints


class HookResult(_Model):
    """What one hook did: shown in the Web UI and kept in the workflow's history.

    A hook that ran and failed is a result with `ok` false, not an activity failure.
    """

    name: str = Field(description="the hook's name in the spec")
    kind: Literal["http", "command", "smoke"] = Field(description="the hook's type")
    ok: bool = Field(description="whether the hook passed")
    detail: str = Field(description="one line for the Web UI: what passed or what failed")
    output: str = Field(
        default="",
        description=f"evidence, at most {MAX_OUTPUT} characters: the response body, the "
        "command's stdout and stderr, or the smoke check's failures",
    )
    status: int | None = Field(
        default=None, description="the last HTTP status or exit code; None if there was none"
    )
    attempts: int = Field(default=1, ge=0, description="attempts made; 0 if it never started")
    seconds: float = Field(default=0.0, ge=0, description="how long the hook took")
    event: HookEvent | None = Field(
        default=None, description="the turning point it ran at; None in histories before 0.2"
    )
    weight: int | None = Field(
        default=None, ge=0, le=100, description="the canary's share of traffic when it ran"
    )

    @field_validator("detail")
    @classmethod
    def _one_line(cls, value: str) -> str:
        line = " ".join(value.split())
        return line if len(line) <= MAX_DETAIL else line[: MAX_DETAIL - len(_CUT)] + _CUT

    @field_validator("output")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return value if len(value) <= MAX_OUTPUT else value[: MAX_OUTPUT - len(_CUT)] + _CUT

    def describe(self) -> str:
        """e.g. `hook warm-cache (http) passed: HTTP 204 (2 attempts, 1.3 s)`."""
        tries = f"{self.attempts} attempts, " if self.attempts > 1 else ""
        verdict = "passed" if self.ok else "failed"
        took = f"{tries}{self.seconds:.1f} s"
        return f"hook {self.name} ({self.kind}) {verdict}: {self.detail} ({took})"

    def when(self) -> str:
        """`pre_rollout`, `smoke before any traffic`, `smoke at 100%`: when it ran."""
        if self.event != "smoke":
            return self.event or "hook"
        return "smoke before any traffic" if not self.weight else f"smoke at {self.weight}%"
