"""Data that crosses the workflow/activity boundary: router state, samples, activity I/O.

Pure pydantic models (no I/O), so `workflows/` may import them. Activities are called
by the names below, which keeps I/O libraries out of workflow code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluicegate.analysis.advice import Advice
from sluicegate.analysis.baseline import Baseline
from sluicegate.analysis.judge import JudgeState
from sluicegate.analysis.samples import Sample
from sluicegate.analysis.sequential import SequentialState
from sluicegate.analysis.verdict import Verdict
from sluicegate.evidence import TrendPoint
from sluicegate.notifications import Notification
from sluicegate.spec import AnalysisSpec, BackupSpec, DeploymentSpec, RouterSpec

BACKUP = "backup"
SET_TRAFFIC = "set_traffic"
WATCH_HEALTH = "watch_health"
ROLLBACK = "rollback"
HEALTH_REPORT = "health_report"  # signal: a watcher's notable check, for display only
HEALTH_LAPSED = "health_lapsed"  # update: no data past the limit, pause for a person
SNAPSHOT = "snapshot"
LIST_BACKUPS = "list_backups"
PREFLIGHT = "preflight"
MEASURE_BASELINE = "measure_baseline"
NOTIFY = "notify"
KEEP_ROUTING = "keep_routing"
FIND_DEPLOYMENT = "find_deployment"  # SupersedeDeployment: what holds deploy-<service>
AWAIT_DEPLOYMENT = "await_deployment"  # SupersedeDeployment: until that run has closed


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RouterState(_Model):
    """Where a router sends a service's traffic. Stable gets `100 - canary_weight`%."""

    canary_weight: int = Field(ge=0, le=100)
    stable_endpoints: tuple[str, ...]
    canary_endpoints: tuple[str, ...]

    def matches(self, other: RouterState) -> bool:
        """Same routing; the order of endpoints within an arm does not matter."""
        return (
            self.canary_weight == other.canary_weight
            and sorted(self.stable_endpoints) == sorted(other.stable_endpoints)
            and sorted(self.canary_endpoints) == sorted(other.canary_endpoints)
        )

    def stable_problem(self, expected: tuple[str, ...]) -> str | None:
        """Why this is not the spec's stable version at rest: an address it does not serve."""
        missing = [address for address in expected if address not in self.stable_endpoints]
        if not missing:
            return None
        return (
            f"the router's stable upstream is {', '.join(self.stable_endpoints) or 'empty'}, "
            f"but the spec's stable version is also at {', '.join(missing)}"
        )

    def shifted(
        self, canary_endpoints: tuple[str, ...], weights: Iterable[int]
    ) -> list[RouterState]:
        """This stable upstream with `canary_endpoints` at each of `weights`: a plan's stages."""
        return [
            RouterState(
                canary_weight=weight,
                stable_endpoints=self.stable_endpoints,
                canary_endpoints=canary_endpoints,
            )
            for weight in weights
        ]

    def describe(self) -> str:
        return (
            f"{100 - self.canary_weight}% stable {','.join(self.stable_endpoints) or '-'}, "
            f"{self.canary_weight}% canary {','.join(self.canary_endpoints) or '-'}"
        )


class BackupInput(_Model):
    service: str
    deployment_id: str = Field(description="workflow run id; names the backup")
    router: RouterSpec
    backup: BackupSpec
    expected_stable: tuple[str, ...] = Field(description="the stable addresses the spec names")
    canary_endpoints: tuple[str, ...] = Field(
        default=(), description="the canary addresses the spec names"
    )
    weights: tuple[int, ...] = Field(
        default=(),
        description="every canary share the stages will ask of the router: each is tried "
        "against it (changing nothing) before any traffic moves",
    )

    @field_validator("expected_stable", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        """A 0.1 worker scheduled one address."""
        return (value,) if isinstance(value, str) else value


class BackupRecord(_Model):
    """Where a verified backup lives and what it holds."""

    path: str
    sha256: str
    state: RouterState


class SetTrafficInput(_Model):
    router: RouterSpec
    desired: RouterState


class InstanceRouting(_Model):
    """One router instance of a fleet and the routing it must read."""

    router: RouterSpec
    expected: RouterState


class CheckReport(_Model):
    """One health check: shown live in heartbeats and kept as evidence."""

    at: datetime
    number: int
    verdict: Verdict
    drift: str | None = Field(default=None, description="set when the router had drifted")
    # Fields added after a release need defaults: recorded histories must still decode.
    stage: str = Field(default="", description="the stage whose watcher made the check")
    failed_checks: int = Field(default=0, description="breaching checks so far this stage")
    sequential: SequentialState | None = Field(
        default=None, description="0.1: the comparison's running state (now inside judge)"
    )
    judge: JudgeState | None = Field(
        default=None, description="the judge's running state, so a retry resumes it"
    )
    sample: Sample | None = Field(
        default=None, description="the sample judged, so a retry judges from there on"
    )
    notes: tuple[str, ...] = Field(
        default=(), description="what the metric sources could not get this check"
    )
    unwatched: timedelta = Field(
        default=timedelta(0),
        description="time this stage's watcher was not running so far (its worker died)",
    )
    trend: tuple[TrendPoint, ...] = Field(
        default=(), description="error rates of this stage's last checks, oldest first"
    )

    def describe(self) -> str:
        """The verdict's evidence, then what the sources could not get."""
        return "; ".join(part for part in (self.verdict.describe(), *self.notes) if part)


class WatchHealthInput(_Model):
    service: str
    stage: str
    router: RouterSpec
    expected: RouterState = Field(description="what the router must read; drift is re-applied")
    analysis: AnalysisSpec
    stable_version: str = ""
    canary_version: str = ""
    baseline: Baseline | None = Field(
        default=None, description="stable before any traffic moved, which the limits use"
    )
    fleet: tuple[InstanceRouting, ...] | None = Field(
        default=None,
        description="the router instances this worker checks for drift; None: `router`",
    )
    resume_from: CheckReport | None = Field(
        default=None,
        description="the check the previous run's watcher handed over at: carry on from it",
    )
    hand_over_at: datetime | None = Field(
        default=None,
        description="at the first check from then on, end with `handed_over` (the workflow "
        "continues as new); None: watch until stopped",
    )
    heartbeat_each_check: bool = Field(
        default=False,
        description="heartbeat once per check, not twice a second: the workflow does not "
        "wait for this watcher to stop (it learns of a cancel at its next heartbeat)",
    )
    deployment_id: str = Field(
        default="",
        description="the deployment's first run id, which the evidence store keeps its "
        "checks under; empty (older runs): the watcher's own run",
    )

    def routings(self) -> tuple[InstanceRouting, ...]:
        """Every instance to check for drift, with the routing it must read."""
        if self.fleet is not None:
            return self.fleet
        return (InstanceRouting(router=self.router, expected=self.expected),)


class KeepRoutingInput(_Model):
    """Keep router instances on another worker's host at their routing through a stage:
    check each every interval and re-apply on drift (the stage's watcher judges health)."""

    service: str
    stage: str
    fleet: tuple[InstanceRouting, ...]
    interval: timedelta


class BaselineInput(_Model):
    """Watch stable for `analysis.baseline` before any traffic moves."""

    service: str
    analysis: AnalysisSpec
    stable_version: str = ""
    canary_version: str = ""


class WatchHealthResult(_Model):
    """Why watching stopped: a breach, lasting lack of data, or a hand-over to the next run
    of the workflow (`last` is the check the next watcher carries on from).

    The real watcher never ends `healthy`; a stand-in that does simply stops watching.
    """

    status: Literal["healthy", "breach", "inconclusive", "handed_over"]
    checks: int
    failed_checks: int
    last: CheckReport | None = None


class RollbackInput(_Model):
    router: RouterSpec
    backup: BackupRecord


class RollbackResult(_Model):
    state: RouterState


class SnapshotInput(_Model):
    """Back up the routing as it is now, whatever it is (for `sluice backup`, and before a
    restore so that the restore can itself be undone)."""

    service: str
    label: str = Field(default="", description="names the backup; the workflow sets its run id")
    router: RouterSpec
    backup: BackupSpec


class BackupEntry(_Model):
    """One backup in the store, checked against its recorded sha256."""

    id: str
    path: str
    created_at: datetime | None
    sha256: str | None
    verified: bool
    problem: str | None = Field(default=None, description="why it does not verify")
    state: RouterState | None = None

    def record(self) -> BackupRecord:
        """The record a restore needs; only a verified backup has one."""
        if not self.verified or self.sha256 is None or self.state is None:
            raise ValueError(f"backup {self.id} does not verify: {self.problem}")
        return BackupRecord(path=self.path, sha256=self.sha256, state=self.state)


class ListBackupsInput(_Model):
    service: str
    backup: BackupSpec


class BackupList(_Model):
    entries: tuple[BackupEntry, ...] = Field(description="newest first")


class PreflightInput(_Model):
    spec: DeploymentSpec


class Finding(_Model):
    """One item of a pre-deployment checklist."""

    name: str
    ok: bool
    detail: str


class PreflightReport(_Model):
    """What the worker found when it tried the spec's router, metric source and backup store."""

    router: Finding
    router_state: RouterState | None
    metrics: Finding
    backup: Finding
    canary: Verdict | None = Field(description="one check of the canary over the interval")
    stable: Verdict | None = Field(description="the same limits applied to stable")
    window_seconds: float
    baseline: Baseline | None = Field(
        default=None, description="stable's numbers against every limit over the interval"
    )
    warnings: tuple[Advice, ...] = Field(
        default=(), description="how the spec could never promote or always roll back here"
    )

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (self.router, self.metrics, self.backup)


class NotifyInput(_Model):
    notification: Notification


class ChannelFailure(_Model):
    channel: str
    error: str


class DeliveryReport(_Model):
    """Which channels got a notification; a channel's failure never fails the deployment."""

    delivered: tuple[str, ...]
    failed: tuple[ChannelFailure, ...]


class FindDeploymentInput(_Model):
    service: str


class DeploymentRun(_Model):
    """The run that holds a service's workflow id `deploy-<service>` while it runs: a
    `CanaryDeployment` or a `RestoreRelease`."""

    workflow_id: str
    run_id: str
    kind: str = Field(description="the workflow type")
    canary_version: str | None = Field(default=None, description="as its search attribute says")


class FoundDeployment(_Model):
    running: DeploymentRun | None = Field(description="None: nothing holds the id now")


class EndedDeployment(_Model):
    """How a run of `deploy-<service>` closed."""

    workflow_id: str
    run_id: str
    kind: str
    status: Literal["completed", "failed", "canceled", "terminated", "timed_out", "continued"]
    outcome: str | None = Field(
        default=None,
        description="promoted, rolled_back, not_started, restored; None unless completed",
    )
    reason: str | None = None


def heartbeat_timeout(interval: timedelta) -> timedelta:
    """A watcher that misses three checks' heartbeats is presumed dead."""
    return max(interval * 3, timedelta(seconds=10))
