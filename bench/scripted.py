"""Scripted stand-ins for the deployment activities, for workflow-logic tests and the
history-length bench (bench/history_length.py).

The time-skipping server cannot skip time while an activity runs, so these return at
once. They keep the router's state in memory; the real activities are tested against
real Envoy in test_envoy_*.py and end to end in test_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sluicegate.analysis import ArmCounters, Baseline, Sample, measure_baseline
from sluicegate.analysis.verdict import MetricResult, Verdict
from sluicegate.contracts import (
    BACKUP,
    HEALTH_REPORT,
    MEASURE_BASELINE,
    NOTIFY,
    ROLLBACK,
    SET_TRAFFIC,
    SNAPSHOT,
    WATCH_HEALTH,
    BackupInput,
    BackupRecord,
    BaselineInput,
    CheckReport,
    DeliveryReport,
    DeploymentStatus,
    NotifyInput,
    RollbackInput,
    RollbackResult,
    RouterState,
    SetTrafficInput,
    SnapshotInput,
    WatchHealthInput,
    WatchHealthResult,
)
from sluicegate.notifications import Notification
from sluicegate.spec import DeploymentSpec, parse_spec

STABLE = "127.0.0.1:18080"
OLD_CANARY = "127.0.0.1:18079"

BREACH = Verdict(
    status="breach",
    results=(
        MetricResult(
            metric="error_rate",
            window="check",
            value=0.05,
            bound=0.01,
            direction="max",
            requests=400,
            status="breach",
        ),
    ),
)


def a_baseline(errors: int = 30, slow: int = 50, requests: int = 10_000) -> Baseline:
    """Stable over a minute before the deployment, against the default limits: by default
    0.3% errors (within error_rate ≤ 1%, but breaching availability ≥ 99.9%) and 0.5% of
    requests slower than 200 ms (within latency_p99_ms ≤ 200)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    zero = ArmCounters(requests=0, errors=0, latency_buckets=((200.0, 0), (float("inf"), 0)))
    stable = ArmCounters(
        requests=requests,
        errors=errors,
        latency_buckets=((200.0, requests - slow), (float("inf"), requests)),
    )
    first = Sample(at=start, stable=zero, canary=None)
    last = Sample(at=start + timedelta(minutes=1), stable=stable, canary=None)
    return measure_baseline(first, last, make_spec().analysis)


@dataclass
class ScriptedActivities:
    breach_in_stage: str | None = None
    hold_in_stage: str | None = None
    silent_in_stage: str | None = None  # a watcher whose worker died: no heartbeat, no end
    fail_set_traffic_at_weight: int | None = None
    hang_set_traffic_at_weight: int | None = None  # until cancelled
    fail_backup: bool = False
    rollback_failures: int = 0
    notify_fails: bool = False
    baseline: Baseline = field(default_factory=lambda: a_baseline())
    fail_baseline: bool = False
    hold_baseline: bool = False  # until cancelled; blocks time skipping
    # A watcher resumed after its worker died: it tells the workflow at its first check
    # that it was not watching for this long (stage, unwatched), then watches on.
    unwatched_in_stage: tuple[str, timedelta] | None = None
    state: RouterState = field(
        default_factory=lambda: RouterState(
            canary_weight=0, stable_endpoints=(STABLE,), canary_endpoints=(OLD_CANARY,)
        )
    )
    applied: list[RouterState] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    rollbacks: int = 0
    steps: list[str] = field(default_factory=list)  # cancelled shifts and rollbacks, in order
    snapshots: list[RouterState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # every activity, in order
    watch_inputs: list[WatchHealthInput] = field(default_factory=list)
    baseline_inputs: list[BaselineInput] = field(default_factory=list)

    @property
    def weights(self) -> list[int]:
        return [s.canary_weight for s in self.applied]

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.backup,
            self.measure_baseline,
            self.set_traffic,
            self.watch_health,
            self.rollback,
            self.snapshot,
            self.notify,
        ]

    @property
    def events(self) -> list[str]:
        return [n.event for n in self.notifications]

    @activity.defn(name=BACKUP)
    async def backup(self, request: BackupInput) -> BackupRecord:
        self.calls.append(BACKUP)
        if self.fail_backup:
            raise ApplicationError("disk full", type="BackupUnreadable", non_retryable=True)
        return BackupRecord(path="memory", sha256="0" * 64, state=self.state)

    @activity.defn(name=MEASURE_BASELINE)
    async def measure_baseline(self, request: BaselineInput) -> Baseline:
        self.calls.append(MEASURE_BASELINE)
        self.baseline_inputs.append(request)
        if self.fail_baseline:
            raise ApplicationError("prometheus down", type="MetricsUnavailable", non_retryable=True)
        if self.hold_baseline:
            try:
                while True:  # a baseline still being measured
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.steps.append("baseline cancelled")
                raise
        return self.baseline

    @activity.defn(name=SET_TRAFFIC)
    async def set_traffic(self, request: SetTrafficInput) -> RouterState:
        self.calls.append(f"{SET_TRAFFIC} {request.desired.canary_weight}%")
        if request.desired.canary_weight == self.fail_set_traffic_at_weight:
            raise ApplicationError("router on fire", type="RouterMisconfigured", non_retryable=True)
        if request.desired.canary_weight == self.hang_set_traffic_at_weight:
            try:
                while True:  # a router that never answers; blocks time skipping
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.steps.append("shift cancelled")
                raise
        self.state = request.desired
        self.applied.append(request.desired)
        return self.state

    @activity.defn(name=WATCH_HEALTH)
    async def watch_health(self, request: WatchHealthInput) -> WatchHealthResult:
        self.calls.append(f"{WATCH_HEALTH} {request.stage}")
        self.watched.append(request.stage)
        self.watch_inputs.append(request)
        if self.unwatched_in_stage is not None and request.stage == self.unwatched_in_stage[0]:
            await self._report_unwatched(request.stage, self.unwatched_in_stage[1])
        if request.stage == self.breach_in_stage:
            report = CheckReport(
                stage=request.stage, at=datetime.now(UTC), number=3, verdict=BREACH
            )
            return WatchHealthResult(status="breach", checks=3, failed_checks=1, last=report)
        if request.stage == self.silent_in_stage:
            self.silent_in_stage = None  # its retry, if any, behaves
            await asyncio.sleep(60)  # never heartbeats: times out like a dead worker's
        if request.stage == self.hold_in_stage:
            while True:  # until cancelled; blocks time skipping, so only for gate tests
                activity.heartbeat()
                await asyncio.sleep(0.1)
        return WatchHealthResult(status="healthy", checks=0, failed_checks=0)

    async def _report_unwatched(self, stage: str, unwatched: timedelta) -> None:
        """What a resumed watcher tells the workflow at its first check."""
        report = CheckReport(
            stage=stage,
            at=datetime.now(UTC),
            number=5,
            verdict=Verdict(status="healthy", results=()),
            unwatched=unwatched,
        )
        handle = activity.client().get_workflow_handle(activity.info().workflow_id)
        await handle.signal(HEALTH_REPORT, report)

    @activity.defn(name=SNAPSHOT)
    async def snapshot(self, request: SnapshotInput) -> BackupRecord:
        self.snapshots.append(self.state)
        return BackupRecord(path=f"memory/{request.label}", sha256="1" * 64, state=self.state)

    @activity.defn(name=NOTIFY)
    async def notify(self, request: NotifyInput) -> DeliveryReport:
        if self.notify_fails:
            raise ApplicationError("notifier crashed", non_retryable=True)
        self.notifications.append(request.notification)
        return DeliveryReport(delivered=("recorder",), failed=())

    @activity.defn(name=ROLLBACK)
    async def rollback(self, request: RollbackInput) -> RollbackResult:
        self.calls.append(ROLLBACK)
        self.rollbacks += 1
        self.steps.append("rollback")
        if self.rollbacks <= self.rollback_failures:
            raise RuntimeError("router unreachable")
        self.state = request.backup.state
        return RollbackResult(state=self.state)


def spec_data(service: str = "checkout") -> dict[str, Any]:
    """The smallest valid spec as plain data (the default plan applies)."""
    return {
        "service": service,
        "stable": {"version": "v1", "address": STABLE},
        "canary": {"version": "v2", "address": "127.0.0.1:18081"},
        "router": {
            "type": "envoy",
            "admin_url": "http://127.0.0.1:19901",
            "endpoints_dir": "/nonexistent",
        },
        "analysis": {"source": {"type": "envoy", "admin_url": "http://127.0.0.1:19901"}},
    }


def make_spec(service: str = "checkout", **overrides: object) -> DeploymentSpec:
    """A valid spec using the default plan; override any top-level field."""
    return parse_spec({**spec_data(service), **overrides})


def a_status(**changes: object) -> DeploymentStatus:
    """A status of a deployment at 25% in stage pilot (2/3); override any field."""
    base: dict[str, object] = {
        "service": "checkout",
        "stable_version": "v1",
        "canary_version": "v2",
        "phase": "progressing",
        "stage": "pilot",
        "stage_index": 1,
        "stages": 3,
        "canary_weight": 25,
        "paused": False,
        "pending_promote": None,
        "latest_check": None,
        "reason": None,
        "controls": (),
    }
    return DeploymentStatus.model_validate({**base, **changes})
