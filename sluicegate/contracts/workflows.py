"""The workflows' side of the contract: their names, the deployment's state as operators
see it, its results, and the inputs of its controls.

Front ends start and steer workflows by these names with these models; they never import
the workflow code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.baseline import Baseline
from sluicegate.contracts.activities import BackupRecord, CheckReport, EndedDeployment, RouterState
from sluicegate.contracts.hooks import HookResult
from sluicegate.spec import BackupSpec, RouterSpec

CANARY_DEPLOYMENT = "CanaryDeployment"
RESTORE_RELEASE = "RestoreRelease"
SNAPSHOT_ROUTING = "SnapshotRouting"
LIST_BACKUPS_WORKFLOW = "ListBackups"
PREFLIGHT_WORKFLOW = "Preflight"
SUPERSEDE_DEPLOYMENT = "SupersedeDeployment"  # its workflow id: supersede_id_for(service)
STATUS = "status"  # CanaryDeployment's query; its controls are signals and updates by Action

Phase = Literal[
    "validating",
    "backing_up",
    "measuring_baseline",
    "progressing",
    "paused",
    "awaiting_approval",
    "guarding",
    "promoting",
    "promoted",
    "rolling_back",
    "rolled_back",
    "not_started",
    "failed",
]
# not_started: it ended before any traffic moved (a refused backup, an abort while stable
# was measured), so it is not a failed release.
Outcome = Literal["promoted", "rolled_back", "not_started"]
Action = Literal["promote", "abort", "pause", "resume"]

MAX_REASON = 2000  # characters of a control's reason, as recorded in the history
MAX_BY = 200  # characters of who asked for it

FINISHED: frozenset[Phase] = frozenset({"promoted", "rolled_back", "not_started"})
WATCHING: frozenset[Phase] = frozenset({"progressing", "paused", "awaiting_approval", "guarding"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ControlInput(_Model):
    """Who asks for a control and why; both are recorded in the deployment's history."""

    by: str = Field(default="unknown", max_length=MAX_BY)
    reason: str = Field(default="", max_length=MAX_REASON)


class PromoteInput(ControlInput):
    full: bool = Field(default=False, description="skip the remaining stages: go to 100%")


class ControlRecord(_Model):
    action: Action
    by: str
    reason: str
    at: datetime
    full: bool = False


class BakeClock(_Model):
    """The current stage's bake: its length and what is left (frozen while paused).

    Time with no watcher running does not count toward the bake: the bake goes on for as
    long as its watcher reported it was not watching (`unwatched`), so `left` and
    `ends_at` include what is still to be made up.
    """

    total: timedelta
    left: timedelta = Field(description="left when the deployment last changed")
    ends_at: datetime | None = Field(description="when the bake ends; None while paused")
    # Fields added after a release need defaults: recorded histories must still decode.
    unwatched: timedelta = Field(
        default=timedelta(0), description="bake time with no watcher running, so far"
    )
    made_up: timedelta = Field(
        default=timedelta(0), description="of which the bake has been extended by already"
    )

    def watched(self, left: timedelta | None = None) -> timedelta:
        """Bake time watched so far, when `left` is left (by default: `self.left`). The
        bake lasts `total + unwatched` in all: what has passed less `unwatched`."""
        left = self.left if left is None else left
        return min(max(self.total - left, timedelta(0)), self.total)


class DeploymentStatus(_Model):
    """Answer of the `status` query and of every update."""

    service: str
    stable_version: str
    canary_version: str
    phase: Phase
    stage: str | None
    stage_index: int | None
    stages: int
    canary_weight: int
    paused: bool
    pending_promote: ControlRecord | None
    latest_check: CheckReport | None
    reason: str | None
    controls: tuple[ControlRecord, ...]
    bake: BakeClock | None = Field(default=None, description="set while a stage bakes")
    baseline: Baseline | None = Field(
        default=None, description="stable against every limit before any traffic moved"
    )
    no_baseline: str | None = Field(
        default=None, description="why stable was not measured first (limits held as written)"
    )
    baseline_lines: tuple[str, ...] = Field(
        default=(), description="stable against each limit before the deployment, or why not"
    )
    hooks: tuple[HookResult, ...] = Field(
        default=(), description="every lifecycle hook and smoke check run so far, in order"
    )
    notification_failures: tuple[str, ...] = Field(
        default=(), description="notifications a channel did not accept"
    )


class DeploymentResult(_Model):
    """How a deployment ended, with the evidence when it was rolled back."""

    service: str
    canary_version: str
    outcome: Outcome
    reason: str
    canary_weight: int | None = Field(
        description="canary share left behind; None if no traffic was ever moved"
    )
    evidence: CheckReport | None
    backup_path: str | None
    controls: tuple[ControlRecord, ...]
    notification_failures: tuple[str, ...] = ()
    hooks: tuple[HookResult, ...] = Field(
        default=(), description="every lifecycle hook and smoke check run, with its output"
    )


class HoldState(_Model):
    """Where a stage's hold was when the deployment continued as new."""

    bake_left: timedelta = Field(description="bake time still to run (0: the bake is over)")
    unwatched: timedelta = timedelta(0)
    made_up: timedelta = timedelta(0)
    health: str | None = Field(default=None, description="the latest judged verdict reported")
    at_gate: bool = Field(default=False, description="waiting at the manual gate")
    gate_deadline: datetime | None = Field(
        default=None, description="when the gate's max_wait passes, if it has not yet"
    )


class Resumption(_Model):
    """What a deployment carries into its next run when it continues as new while it holds
    a stage (a gate, a long bake, the guard), so its history stays short."""

    began_at: datetime = Field(description="when the deployment's first run started")
    first_run_id: str = Field(default="", description="the deployment's first run")
    runs: int = Field(ge=1, description="runs before this one")
    stage_index: int | None = Field(description="the stage held; None: the guard after 100%")
    hold: HoldState
    canary_weight: int
    backups: tuple[BackupRecord, ...]
    baseline: Baseline | None
    no_baseline: str | None
    latest_check: CheckReport | None
    watch_from: CheckReport | None = Field(
        description="the check the watcher handed over at: the next watcher carries on from it"
    )
    controls: tuple[ControlRecord, ...]
    paused: bool
    pending_promote: ControlRecord | None = None
    abort: ControlRecord | None = Field(
        default=None, description="an abort that came while the run handed over"
    )
    hooks: tuple[HookResult, ...]
    rollout_began: bool
    notification_failures: tuple[str, ...]
    progress_deadline: datetime | None = Field(
        description="when the progress deadline passes, if it has not yet"
    )


class RestoreInput(_Model):
    """Put `service`'s routing back to `backup`, first backing up what it replaces."""

    service: str
    router: RouterSpec
    backup_store: BackupSpec = Field(description="where the undo backup goes")
    backup_id: str
    backup: BackupRecord
    by: str = Field(default="unknown", max_length=MAX_BY)
    reason: str = Field(default="", max_length=MAX_REASON)


class RestoreResult(_Model):
    service: str
    backup_id: str
    state: RouterState = Field(description="the routing read back after the restore")
    undo: BackupRecord = Field(description="the routing as it was before; restore it to undo")
    by: str
    reason: str


def supersede_id_for(service: str) -> str:
    """The workflow id of a service's SupersedeDeployment: one at a time per service."""
    return f"supersede-{service}"


def superseded_reason(version: str, reason: str = "") -> str:
    """What a superseded deployment's abort records: `superseded by v3` (`: <reason>`), cut
    to fit a control's reason."""
    text = f"superseded by {version}" + (f": {reason}" if reason else "")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class SupersedeInput(_Model):
    """Who asks for a supersede and why: the abort sent to the running deployment records
    `by` and the reason `superseded by <version>` (followed by `reason`, if given)."""

    by: str = Field(default="unknown", max_length=MAX_BY)
    reason: str = Field(default="", max_length=MAX_REASON)


class SupersedeResult(_Model):
    """What a SupersedeDeployment did: the run it superseded, if one ran, and the new one."""

    service: str
    canary_version: str = Field(description="the new deployment's canary version")
    superseded: EndedDeployment | None = Field(
        description="the run that held deploy-<service>, as it closed; None if none ran"
    )
    abort_sent: bool = Field(description="whether the running run was sent an abort")
    run_id: str = Field(description="the new CanaryDeployment's run (workflow deploy-<service>)")
    by: str
