"""The deployment itself: the two versions, the stages, the backups, and the top-level
`DeploymentSpec` with its service name and workflow id."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sluicegate.spec.analysis import AnalysisSpec
from sluicegate.spec.fields import SpecModel
from sluicegate.spec.hooks import HooksSpec, SmokeHook
from sluicegate.spec.routers import RouterSpec

Percent = Annotated[int, Field(ge=0, le=100, description="share of traffic, 0-100")]
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_SERVICE = re.compile(r"^[a-z0-9]([a-z0-9\-_.]{0,61}[a-z0-9])?$")


def _host_port(value: str) -> str:
    if not _ADDRESS.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"must be host:port with a port 1-65535, got {value!r}")
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"must not be negative, got {value.total_seconds():g} s")
    return value


NonNegativeDuration = Annotated[timedelta, AfterValidator(_not_negative)]


class Version(SpecModel):
    """One build of the service and the endpoints its instances listen on."""

    version: str = Field(min_length=1, description="label shown everywhere, e.g. v2 or a git sha")
    address: HostPort | None = Field(
        default=None, description="host:port of the one instance serving this version"
    )
    addresses: tuple[HostPort, ...] = Field(
        default=(), description="host:port of every instance serving this version"
    )
    committed_at: AwareDatetime | None = Field(
        default=None,
        description="when this version's change was committed (with a time zone): the "
        "canary's gives the DORA lead time for changes",
    )

    @model_validator(mode="after")
    def _endpoints_given_once(self) -> Version:
        if (self.address is None) == (not self.addresses):
            raise ValueError(
                "give address (host:port of one instance) or addresses (a list), not both"
                if self.address is not None
                else "address required (host:port), or addresses: a list of host:port"
            )
        if len(set(self.addresses)) != len(self.addresses):
            raise ValueError(f"addresses must each appear once, got {list(self.addresses)}")
        return self

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every instance's host:port, however the spec gave them."""
        return (self.address,) if self.address is not None else self.addresses


class Stage(SpecModel):
    """One step of the rollout: a canary weight held for a bake time and/or a manual gate."""

    name: str = Field(min_length=1)
    weight: Percent
    bake: NonNegativeDuration = Field(
        default=timedelta(0), description="how long to hold and watch"
    )
    manual_gate: bool = Field(default=False, description="after baking, wait for promote")

    @model_validator(mode="after")
    def _holds_somehow(self) -> Stage:
        problems: list[str] = []
        if self.weight == 0:
            problems.append("weight must be 1-100 (0 sends no traffic)")
        if self.bake == timedelta(0) and not self.manual_gate:
            problems.append("give a bake time, a manual_gate, or both")
        if problems:
            raise ValueError(f"stage {self.name!r}: " + "; ".join(problems))
        return self


DEFAULT_STAGES = (
    Stage(name="canary", weight=5, bake=timedelta(minutes=30)),
    Stage(name="pilot", weight=25, bake=timedelta(minutes=60)),
    Stage(name="gradual", weight=50, bake=timedelta(minutes=120)),
)


class PostPromotionSpec(SpecModel):
    """The guard after 100%: the old version stays registered while the new one is judged
    at full load, and a breach puts the old one back."""

    watch: NonNegativeDuration = Field(
        default=timedelta(minutes=30),
        description="how long to keep judging at 100% before the old version is retired; "
        "0 turns the guard off",
    )


class Deadline(SpecModel):
    """How long something may take, and what happens past it."""

    after: timedelta = Field(description="how long, e.g. PT8H")
    then: Literal["rollback", "page"] = Field(
        description="rollback: roll back (as an abort by sluicegate would); page: page P2 "
        "once and keep going"
    )

    @field_validator("after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"must be positive, got {value.total_seconds():g} s")
        return value


DEFAULT_MAX_WAIT = Deadline(after=timedelta(hours=4), then="page")
# Each run of a deployment that holds a stage for days lasts at most this long.
DEFAULT_RUN_LENGTH = timedelta(days=1)


class BackupSpec(SpecModel):
    directory: str = Field(default=".state/backups", description="where router backups go")


class DeploymentSpec(SpecModel):
    """Everything one canary deployment of one service needs."""

    service: str = Field(description="lowercase name; the workflow id is deploy-<service>")
    stable: Version
    canary: Version
    router: RouterSpec
    analysis: AnalysisSpec
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    post_promotion: PostPromotionSpec = PostPromotionSpec()
    progress_deadline: Deadline | None = Field(
        default=None, description="the longest the whole deployment may take; none by default"
    )
    max_wait: Deadline = Field(
        default=DEFAULT_MAX_WAIT,
        description="the longest a manual gate waits for a person (default: page after 4 h "
        "and keep waiting)",
    )
    hooks: HooksSpec = HooksSpec()
    smoke: tuple[SmokeHook, ...] = Field(
        default=(),
        description="checks straight to the canary's endpoints: before any traffic moves, "
        "and again once it serves 100%",
    )
    backup: BackupSpec = BackupSpec()
    continue_as_new_after: timedelta = Field(
        default=DEFAULT_RUN_LENGTH,
        description="while a stage holds longer than this (a gate, a long bake, the guard), "
        "the deployment continues as a new run this often, carrying its state, so its "
        "history stays short; at least 3 analysis intervals",
    )

    @model_validator(mode="after")
    def _runs_hold_checks(self) -> DeploymentSpec:
        least = 3 * self.analysis.interval
        if self.continue_as_new_after < least:
            raise ValueError(
                f"continue_as_new_after must be at least 3 analysis intervals "
                f"({least.total_seconds():g} s), got "
                f"{self.continue_as_new_after.total_seconds():g} s"
            )
        return self

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        if problem := service_name_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("stages")
    @classmethod
    def _increasing(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if not stages:
            raise ValueError("needs at least one stage")
        problems = [
            f"weights must increase: stage {after.name!r} has {after.weight}% "
            f"after {before.name!r} at {before.weight}%"
            for before, after in itertools.pairwise(stages)
            if after.weight <= before.weight
        ]
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            problems.append(f"stage names must be unique, got {names}")
        if problems:
            raise ValueError("; ".join(problems))
        return stages

    @field_validator("canary")
    @classmethod
    def _canary_elsewhere(cls, canary: Version, info: ValidationInfo) -> Version:
        stable = info.data.get("stable")
        if stable is not None and (shared := set(canary.endpoints) & set(stable.endpoints)):
            raise ValueError(
                f"the canary's addresses must differ from stable's, both have "
                f"{', '.join(sorted(shared))}: the canary must run somewhere else"
            )
        return canary

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.service)


def service_name_problem(name: str) -> str | None:
    """Why `name` cannot be a service name, or None if it can."""
    if _SERVICE.match(name):
        return None
    return (
        "must be 1-63 characters of a-z, 0-9, '-', '_' or '.', "
        f"starting and ending with a letter or digit, got {name!r}"
    )


def workflow_id_for(service: str) -> str:
    return f"deploy-{service}"
