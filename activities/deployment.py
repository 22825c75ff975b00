"""The deployment's side effects: back up, set traffic, watch health, roll back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.backup_store import state_to_restore, write_backup
from activities.errors import temporal_errors
from activities.heartbeats import heartbeating, sleep_heartbeating
from activities.metrics import SourceContext, analysis_source
from activities.metrics.base import MetricSource
from activities.routers import router_for
from activities.routers.base import Router
from sluicegate.analysis import ComparisonResult, Verdict, compare, judge, start_comparison
from sluicegate.analysis.samples import Sample
from sluicegate.contracts import (
    BACKUP,
    HEALTH_LAPSED,
    HEALTH_REPORT,
    ROLLBACK,
    SET_TRAFFIC,
    WATCH_HEALTH,
    BackupInput,
    BackupRecord,
    CheckReport,
    RollbackInput,
    RollbackResult,
    RouterState,
    SetTrafficInput,
    WatchHealthInput,
    WatchHealthResult,
)
from sluicegate.errors import MetricsUnavailable, RouterMisconfigured, SluicegateError


@activity.defn(name=BACKUP)
@temporal_errors
@heartbeating
async def backup(request: BackupInput) -> BackupRecord:
    """Snapshot the router before any traffic moves; refuse if it is not at rest."""
    state = await router_for(request.router).read_state()
    if state.canary_weight != 0:
        raise RouterMisconfigured(
            f"the router already sends {state.canary_weight}% to the canary: another deployment "
            "may be running or an earlier one did not finish; set the canary weight to 0 first"
        )
    if request.expected_stable not in state.stable_endpoints:
        raise RouterMisconfigured(
            f"the router's stable upstream is {', '.join(state.stable_endpoints) or 'empty'}, "
            f"but the spec says stable.address is {request.expected_stable}"
        )
    return write_backup(request.backup.directory, request.service, request.deployment_id, state)


@activity.defn(name=SET_TRAFFIC)
@temporal_errors
@heartbeating
async def set_traffic(request: SetTrafficInput) -> RouterState:
    """Set absolute weights and endpoints; returns the verified read-back."""
    return await router_for(request.router).apply(request.desired)


@activity.defn(name=ROLLBACK)
@temporal_errors
@heartbeating
async def rollback(request: RollbackInput) -> RollbackResult:
    """Restore the backed-up routing (100% stable) and verify it by read-back."""
    state = await router_for(request.router).restore(state_to_restore(request.backup))
    return RollbackResult(state=state)


@activity.defn(name=WATCH_HEALTH)
@temporal_errors
async def watch_health(request: WatchHealthInput) -> WatchHealthResult:
    """Check health every interval until a breach, lasting lack of data (unless the spec
    says to pause for a person then), or cancellation.

    Each check also reads the router back and re-applies the expected state on drift.
    The latest check is the heartbeat detail, so the Web UI shows live health.
    """
    context = SourceContext(
        service=request.service,
        stable_version=request.stable_version,
        canary_version=request.canary_version,
        interval=request.analysis.interval,
    )
    source = analysis_source(request.analysis, context)
    return await _Watch(request, router_for(request.router), source).run()


class _Watch:
    def __init__(self, request: WatchHealthInput, router: Router, source: MetricSource) -> None:
        self.request = request
        self.router = router
        self.source = source
        # A retried watcher (its worker died) carries on from its last heartbeat: same
        # check numbers, same failed-check count, so a crash never buys extra tolerance.
        self.latest = _last_heartbeat()
        self.checks = self.latest.number if self.latest else 0
        self.failed = self.latest.failed_checks if self.latest else 0
        self.sequential = self.latest.sequential if self.latest else None
        self.inconclusive_in_a_row = 0
        self.reported_status: str | None = None
        self.reported_drift = False

    async def run(self) -> WatchHealthResult:
        policy = self.request.analysis
        stage_start = previous = await self._sample()
        if self.sequential is None:
            self.sequential = start_comparison(stage_start, policy.sequential)
        next_check = time.monotonic()
        while True:
            next_check += policy.interval.total_seconds()
            await sleep_heartbeating(next_check, *([self.latest] if self.latest else []))
            self.checks += 1
            drift = await self._correct_drift()
            current = await self._sample()
            if stage_start.canary is None:
                stage_start = current
            verdict = self._judge(stage_start, previous, current)
            if any(r.status == "breach" for r in verdict.results):
                self.failed += 1
            report = CheckReport(
                stage=self.request.stage,
                at=current.at,
                number=self.checks,
                verdict=verdict,
                drift=drift,
                failed_checks=self.failed,
                sequential=self.sequential,
                notes=current.notes,
            )
            self.latest = report
            activity.heartbeat(report)
            previous = current
            if (result := self._conclude(report)) is not None:
                return result
            if self._lapsed():
                await self._ask_for_a_person(report)
            elif self._notable(report):
                await self._report(report)

    def _judge(self, stage_start: Sample, previous: Sample, current: Sample) -> Verdict:
        """The thresholds, the canary-versus-stable comparison, or both, as the spec says."""
        policy = self.request.analysis
        results = judge(stage_start, previous, current, policy).results
        comparisons: tuple[ComparisonResult, ...] = ()
        if policy.mode != "thresholds" and self.sequential is not None:
            self.sequential, comparisons = compare(
                self.sequential, previous, current, policy.sequential, policy.min_requests
            )
        return Verdict.of(results if policy.mode != "sequential" else (), comparisons)

    def _conclude(self, report: CheckReport) -> WatchHealthResult | None:
        """Return a result when the policy says to stop; None to keep watching."""
        policy = self.request.analysis
        status = report.verdict.status
        self.inconclusive_in_a_row = (
            self.inconclusive_in_a_row + 1 if status == "inconclusive" else 0
        )
        # The comparison already bounds its false alarms: its first breach rolls back.
        if self.failed > policy.failed_checks_tolerated or any(
            c.status == "breach" for c in report.verdict.comparisons
        ):
            return self._result("breach", report)
        if self._lapsed() and policy.on_inconclusive == "rollback":
            return self._result("inconclusive", report)
        return None

    def _lapsed(self) -> bool:
        """More checks in a row without enough data than the policy tolerates."""
        return self.inconclusive_in_a_row > self.request.analysis.inconclusive_checks_tolerated

    def _notable(self, report: CheckReport) -> bool:
        """Judged health changed (the first healthy check, a tolerated breach, a recovery),
        or the stage's first drift. The workflow waits for a healthy report before it
        moves on; the count is bounded by the policy, so the history grows with the plan."""
        status = report.verdict.status
        if status != "inconclusive" and status != self.reported_status:
            self.reported_status = status
            return True
        if report.drift is not None and not self.reported_drift:
            self.reported_drift = True
            return True
        return False

    async def _report(self, report: CheckReport) -> None:
        """Tell the workflow, for its Web UI details; live checks are in the heartbeat."""
        workflow_id = activity.info().workflow_id
        try:
            await activity.client().get_workflow_handle(workflow_id).signal(HEALTH_REPORT, report)
        except Exception as err:  # display only: never let it stop the watching
            activity.logger.warning("could not report check %d: %s", report.number, err)

    async def _ask_for_a_person(self, report: CheckReport) -> None:
        """Pause the deployment until a person acts (`on_inconclusive: pause`).

        Once asked, a new lapse needs the full count of checks again, so a deployment
        resumed while data is still missing pauses again only after as many checks.
        """
        handle = activity.client().get_workflow_handle(activity.info().workflow_id)
        try:
            await handle.execute_update(HEALTH_LAPSED, report)
        except WorkflowUpdateFailedError:
            pass  # already paused by someone, or no longer progressing: no trace in history
        except RPCError as err:  # Temporal unreachable: the next check asks again
            activity.logger.warning("could not pause for check %d: %s", report.number, err)
            return
        self.inconclusive_in_a_row = 0
        self.reported_status = None  # the workflow forgets older evidence: report anew

    def _result(self, status: str, report: CheckReport) -> WatchHealthResult:
        return WatchHealthResult.model_validate(
            {"status": status, "checks": self.checks, "failed_checks": self.failed, "last": report}
        )

    async def _sample(self) -> Sample:
        try:
            return await self.source.collect()
        except MetricsUnavailable as err:
            activity.logger.warning("no data this check: %s", err)
            return Sample(at=datetime.now(UTC), stable=None, canary=None, notes=(str(err),))

    async def _correct_drift(self) -> str | None:
        """Re-apply the expected routing if the router drifted; describe what was found."""
        expected = self.request.expected
        try:
            actual = await self.router.read_state()
            if actual.matches(expected):
                return None
            await self.router.apply(expected)
        except SluicegateError as err:
            activity.logger.warning("router check failed: %s", err)
            return f"router unreadable: {err}"
        message = f"router drifted to {actual.describe()}; re-applied {expected.describe()}"
        activity.logger.warning(message)
        return message


def _last_heartbeat() -> CheckReport | None:
    """The check a previous attempt of this watcher last heartbeated, if any."""
    details = activity.info().heartbeat_details
    if not details:
        return None
    try:
        return CheckReport.model_validate(details[0])
    except ValidationError:
        return None


ACTIVITIES = [backup, set_traffic, watch_health, rollback]
