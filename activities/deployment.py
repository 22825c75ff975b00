"""The deployment's side effects: back up, set traffic, watch health, roll back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace
from pydantic import ValidationError
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.service import RPCError

from activities.backup_store import state_to_restore, write_backup
from activities.errors import temporal_errors
from activities.evidence.recorder import record
from activities.heartbeats import HEARTBEAT_EVERY, heartbeating, sleep_heartbeating, stop_requested
from activities.measures import count_check, count_metric_source_error, record_check_lateness
from activities.metrics import SourceContext, analysis_source
from activities.metrics.base import MetricSource
from activities.routers import router_for
from activities.routers.base import Router
from sluicegate.analysis import Baseline, JudgeState, judge_check, measure_baseline, start_stage
from sluicegate.analysis.samples import Sample
from sluicegate.contracts import (
    BACKUP,
    HEALTH_LAPSED,
    HEALTH_REPORT,
    KEEP_ROUTING,
    MEASURE_BASELINE,
    ROLLBACK,
    SET_TRAFFIC,
    WATCH_HEALTH,
    BackupInput,
    BackupRecord,
    BaselineInput,
    CheckReport,
    InstanceRouting,
    KeepRoutingInput,
    RollbackInput,
    RollbackResult,
    RouterState,
    SetTrafficInput,
    WatchHealthInput,
    WatchHealthResult,
)
from sluicegate.errors import MetricsUnavailable, RouterMisconfigured, SluicegateError
from sluicegate.evidence import (
    ROLLBACK_VERIFIED,
    ArmNumbers,
    CheckRecord,
    EventRecord,
    check_numbers,
    extend_trend,
)

# A resumed watcher's first check may come this much later than one interval after the
# last check before it without counting as unwatched: the checks' own jitter.
UNWATCHED_SLACK = timedelta(seconds=1)
# Each check is a span under the watcher's RunActivity:watch_health (docs/OBSERVABILITY.md).
CHECK_SPAN = "HealthCheck"
tracer = trace.get_tracer(__name__)


@activity.defn(name=BACKUP)
@temporal_errors
@heartbeating
async def backup(request: BackupInput) -> BackupRecord:
    """Snapshot the router before any traffic moves; refuse if it is not at rest."""
    router = router_for(request.router)
    state = await router.read_state()
    for routing in state.shifted(request.canary_endpoints, request.weights):
        router.check(routing)  # a share the router cannot give: refused before any traffic
    if state.canary_weight != 0:
        raise RouterMisconfigured(
            f"the router already sends {state.canary_weight}% to the canary: another deployment "
            "may be running or an earlier one did not finish; set the canary weight to 0 first"
        )
    if (problem := state.stable_problem(request.expected_stable)) is not None:
        raise RouterMisconfigured(problem)
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
    info = activity.info()
    record(
        EventRecord(
            deployment_id="",  # the store finds it from the run
            run_id=info.workflow_run_id or "",
            kind=ROLLBACK_VERIFIED,
            at=datetime.now(UTC),
            canary_weight=state.canary_weight,
            summary=f"router {request.router.label()} reads {state.describe()}",
            ident=info.activity_id,
        )
    )
    return RollbackResult(state=state)


@activity.defn(name=MEASURE_BASELINE)
@temporal_errors
@heartbeating
async def measure_stable_baseline(request: BaselineInput) -> Baseline:
    """Stable's numbers against every limit, over `analysis.baseline`, before any traffic
    moves. A source without data gives an empty baseline: then no limit is relaxed."""
    policy = request.analysis
    source = analysis_source(policy, _context(request))
    kind = policy.source.type
    first = await _sample(source, kind)
    await sleep_heartbeating(time.monotonic() + policy.baseline.total_seconds())
    return measure_baseline(first, await _sample(source, kind), policy)


@activity.defn(name=WATCH_HEALTH)
@temporal_errors
async def watch_health(request: WatchHealthInput) -> WatchHealthResult:
    """Check health every interval until a breach, lasting lack of data (unless the spec
    says to pause for a person then), or cancellation.

    Each check also reads the router back and re-applies the expected state on drift.
    The latest check is the heartbeat detail, so the Web UI shows live health.
    """
    source = analysis_source(request.analysis, _context(request))
    return await _Watch(request, source).run()


def _context(request: WatchHealthInput | BaselineInput) -> SourceContext:
    return SourceContext(
        service=request.service,
        stable_version=request.stable_version,
        canary_version=request.canary_version,
        interval=request.analysis.interval,
    )


async def _sample(source: MetricSource, kind: str) -> Sample:
    """A poll of the source (of type `kind`); a source that cannot answer gives a sample
    without data."""
    try:
        return await source.collect()
    except MetricsUnavailable as err:
        count_metric_source_error(kind)
        activity.logger.warning("no data this check: %s", err)
        return Sample(at=datetime.now(UTC), stable=None, canary=None, notes=(str(err),))


@activity.defn(name=KEEP_ROUTING)
@temporal_errors
async def keep_routing(request: KeepRoutingInput) -> None:
    """Check the instances every interval and re-apply drift, until cancelled; the latest
    drift found is the heartbeat detail (the Web UI shows it) and is logged."""
    routers = _named_routers(request.fleet, named=True)
    latest: str | None = None
    next_check = time.monotonic()
    while True:
        next_check += request.interval.total_seconds()
        details = [latest] if latest else []
        await sleep_heartbeating(next_check, *details)
        found = [await _correct(*each, details) for each in routers]
        latest = "; ".join(problem for problem in found if problem) or latest


def _named_routers(
    routings: tuple[InstanceRouting, ...], named: bool
) -> list[tuple[str, Router, RouterState]]:
    """Each instance's client, the name its evidence uses (in a fleet) and the routing it
    must read; a spec no router can serve fails here, before any check."""
    return [
        (
            f"router {each.router.label()}" if named else "router",
            router_for(each.router),
            each.expected,
        )
        for each in routings
    ]


class _Watch:
    def __init__(self, request: WatchHealthInput, source: MetricSource) -> None:
        self.request = request
        self.routers = _named_routers(request.routings(), named=request.fleet is not None)
        self.source = source
        # A retried watcher (its worker died) carries on from its last heartbeat: same
        # check numbers, same evidence, from the same sample, so a crash never buys
        # extra tolerance nor loses the requests served meanwhile. The first watcher of a
        # run that continued as new carries on from the check its predecessor handed over.
        self.latest = _last_heartbeat() or request.resume_from
        self.checks = self.latest.number if self.latest else 0
        self.state: JudgeState | None = self.latest.judge if self.latest else None
        self.reported_status: str | None = None
        self.reported_drift = False
        # Time with no watcher running (a previous attempt's worker died) does not count
        # toward the bake: the first check of a resumed watcher adds the gap since the
        # last check before it, less one interval, and tells the workflow at once.
        self.unwatched = self.latest.unwatched if self.latest else timedelta(0)
        self.reported_unwatched = timedelta(0)
        self.resumed_from = _resumed_from(self.latest)
        self._encoded: RawValue | None = None  # the latest check, as its heartbeat payload
        # A workflow that waits for the watcher to stop needs it to hear of a cancel soon;
        # one that does not (patch `watcher-not-awaited`) saves the heartbeats between
        # checks: 360 instead of 3,600 per deployment-hour at 10-s checks.
        interval = self.request.analysis.interval.total_seconds()
        self._heartbeat_every = interval if request.heartbeat_each_check else HEARTBEAT_EVERY

    async def run(self) -> WatchHealthResult:
        policy = self.request.analysis
        previous = self.latest.sample if self.latest and self.latest.sample else None
        next_check = time.monotonic()
        if previous is None or self.state is None:
            previous = await self._sample()
            self.state = start_stage(previous, policy, self.request.baseline)
            if self.latest is not None:  # a heartbeat of 0.1, without the judge's state
                self.state = self.state.model_copy(
                    update={"failed_checks": self.latest.failed_checks}
                )
            next_check = time.monotonic()
        elif activity.info().attempt > 1:
            # Retried after its worker died: the checks since the last heartbeat were
            # missed, so the first comes at once, over the whole gap, not an interval later.
            next_check -= policy.interval.total_seconds()
        while True:
            next_check += policy.interval.total_seconds()
            await sleep_heartbeating(next_check, *self._beat(), every=self._heartbeat_every)
            # How much later than scheduled this check begins (a busy worker's delay).
            record_check_lateness(timedelta(seconds=time.monotonic() - next_check))
            begun = {
                "sluicegate.stage": self.request.stage,
                "sluicegate.check.number": self.checks + 1,
            }
            # A check cut short (the watcher cancelled) keeps only these two attributes.
            with tracer.start_as_current_span(CHECK_SPAN, attributes=begun) as span:
                current, report = await self._check(previous)
                span.set_attributes(check_attributes(report))
                previous = current
                verdict = report.verdict
                if verdict.rollback:
                    status = "breach" if verdict.status == "breach" else "inconclusive"
                    return self._result(status, report)
                if verdict.lapsed:
                    await self._ask_for_a_person(report)
                elif self._notable(report) or self.unwatched > self.reported_unwatched:
                    await self._report(report)
                if self._hand_over_due(current.at):
                    return self._result("handed_over", report)

    async def _check(self, previous: Sample) -> tuple[Sample, CheckReport]:
        """One check: correct drift, sample, judge against `previous`, heartbeat the report."""
        assert self.state is not None
        self.checks += 1
        drift = await self._correct_drift()
        current = await self._sample()
        self._count_unwatched(current.at)
        self.state, verdict = judge_check(self.state, previous, current, self.request.analysis)
        count_check(verdict.status)
        stable, canary = check_numbers(previous, current)
        report = CheckReport(
            stage=self.request.stage,
            at=current.at,
            number=self.checks,
            verdict=verdict,
            drift=drift,
            failed_checks=self.state.failed_checks,
            judge=self.state,
            sample=current,
            notes=current.notes,
            unwatched=self.unwatched,
            trend=extend_trend(self.latest.trend if self.latest else (), stable, canary),
        )
        record(self._evidence(report, stable, canary))
        self.latest = report
        self._encoded = None  # heartbeated as the wait for the next check begins
        return current, report

    def _evidence(
        self, report: CheckReport, stable: ArmNumbers | None, canary: ArmNumbers | None
    ) -> CheckRecord:
        """The check as the evidence store keeps it."""
        run_id = activity.info().workflow_run_id or ""
        return CheckRecord(
            deployment_id=self.request.deployment_id or run_id,
            run_id=run_id,
            service=self.request.service,
            stage=report.stage,
            number=report.number,
            at=report.at,
            canary_weight=self.request.expected.canary_weight,
            status=report.verdict.status,
            rollback=report.verdict.rollback,
            stable=stable,
            canary=canary,
            verdict=report.verdict,
            drift=report.drift,
            notes=report.notes,
        )

    def _beat(self) -> tuple[RawValue, ...]:
        """The heartbeat's details: the latest check, encoded once per check, not at each of
        the heartbeats between checks (two a second)."""
        if self.latest is None:
            return ()
        if self._encoded is None:
            self._encoded = RawValue(activity.payload_converter().to_payload(self.latest))
        return (self._encoded,)

    def _hand_over_due(self, checked_at: datetime) -> bool:
        """The workflow continues as new from here: end on a check, so the next run's
        watcher carries on from it without a gap."""
        hand_over_at = self.request.hand_over_at
        return hand_over_at is not None and checked_at >= hand_over_at

    def _count_unwatched(self, checked_at: datetime) -> None:
        """At a resumed watcher's first check: add the time no watcher was running."""
        if self.resumed_from is None:
            return
        gap = checked_at - self.resumed_from - self.request.analysis.interval
        self.resumed_from = None
        if gap >= UNWATCHED_SLACK:
            self.unwatched += gap
            activity.logger.warning("stage %s was not watched for %s", self.request.stage, gap)

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
        """Tell the workflow (its details, when a stage may move on, unwatched time to make
        up); live checks are in the heartbeat."""
        try:
            await _own_workflow().signal(HEALTH_REPORT, report)
        except Exception as err:  # never let it stop the watching
            activity.logger.warning("could not report check %d: %s", report.number, err)
            return  # unwatched time not told yet is told with the next check
        self.reported_unwatched = report.unwatched

    async def _ask_for_a_person(self, report: CheckReport) -> None:
        """Pause the deployment until a person acts (`on_inconclusive: pause`).

        Once asked, a new lapse needs the full count of checks again, so a deployment
        resumed while data is still missing pauses again only after as many checks.
        """
        handle = _own_workflow()
        try:
            # temporalio's multi-param overload annotates `args: MultiParamSpec.args`, which
            # pyright reads as Unknown; the string-name overload used here is fully typed.
            await handle.execute_update(HEALTH_LAPSED, report)  # pyright: ignore[reportUnknownMemberType]
        except WorkflowUpdateFailedError:
            pass  # already paused by someone, or no longer progressing: no trace in history
        except RPCError as err:  # Temporal unreachable: the next check asks again
            activity.logger.warning("could not pause for check %d: %s", report.number, err)
            return
        assert self.state is not None
        self.state = self.state.after_pause()
        self.reported_status = None  # the workflow forgets older evidence: report anew

    def _result(self, status: str, report: CheckReport) -> WatchHealthResult:
        return WatchHealthResult.model_validate(
            {
                "status": status,
                "checks": self.checks,
                "failed_checks": report.failed_checks,
                "last": report,
            }
        )

    async def _sample(self) -> Sample:
        return await _sample(self.source, self.request.analysis.source.type)

    async def _correct_drift(self) -> str | None:
        """Re-apply the expected routing on every instance that drifted; describe what was
        found, naming the instance in a fleet."""
        found = [await _correct(*each, self._beat()) for each in self.routers]
        return "; ".join(problem for problem in found if problem) or None


async def _correct(
    where: str, router: Router, expected: RouterState, details: Sequence[Any]
) -> str | None:
    """Re-apply `expected` if `router` drifted and the stage still goes on; None when it
    had not drifted. `details` are the activity's heartbeat details, kept as they are.

    A workflow may have moved on (shifted, rolled back) without waiting for this activity
    to stop: then what it reads is the workflow's doing, and re-applying would undo it.
    """
    try:
        actual = await router.read_state()
        if actual.matches(expected):
            return None
        if (reason := await stop_requested(*details)) is not None:
            activity.logger.info(
                "%s reads %s; not re-applied: %s", where, actual.describe(), reason
            )
            return f"{where} reads {actual.describe()}; not re-applied: {reason}"
        await router.apply(expected)
    except SluicegateError as err:
        activity.logger.warning("%s check failed: %s", where, err)
        return f"{where} unreadable: {err}"
    message = f"{where} drifted to {actual.describe()}; re-applied {expected.describe()}"
    activity.logger.warning(message)
    return message


def check_attributes(report: CheckReport) -> dict[str, str | int | bool]:
    """A check span's attributes: which check, its verdict and what the stage must do."""
    verdict = report.verdict
    attributes: dict[str, str | int | bool] = {
        "sluicegate.stage": report.stage,
        "sluicegate.check.number": report.number,
        "sluicegate.check.verdict": verdict.status,
        "sluicegate.check.rollback": verdict.rollback,
        "sluicegate.check.lapsed": verdict.lapsed,
        "sluicegate.check.failed_checks": report.failed_checks,
        "sluicegate.check.evidence": verdict.describe(),
    }
    if verdict.canary_requests is not None:
        attributes["sluicegate.check.canary_requests"] = verdict.canary_requests
    if report.drift is not None:
        attributes["sluicegate.check.drift"] = report.drift
    if report.notes:
        attributes["sluicegate.check.notes"] = "; ".join(report.notes)
    return attributes


def _resumed_from(latest: CheckReport | None) -> datetime | None:
    """When the stage was last checked, if this attempt resumes one whose worker died: the
    last check heartbeated, else (it died before its first check) when the watcher was
    first scheduled. None for a first attempt."""
    if latest is not None:
        return latest.at
    info = activity.info()
    return info.scheduled_time if info.attempt > 1 else None


def _own_workflow() -> WorkflowHandle[Any, Any]:
    """The workflow this watcher reports to. Temporal leaves `workflow_id` None only for an
    activity started on its own, which watch_health never is."""
    workflow_id = activity.info().workflow_id
    if workflow_id is None:
        raise RuntimeError("watch_health runs only as a workflow's activity")
    return activity.client().get_workflow_handle(workflow_id)


def _last_heartbeat() -> CheckReport | None:
    """The check a previous attempt of this watcher last heartbeated, if any."""
    details = activity.info().heartbeat_details
    if not details:
        return None
    try:
        return CheckReport.model_validate(details[0])
    except ValidationError:
        return None


ACTIVITIES = [backup, measure_stable_baseline, set_traffic, watch_health, keep_routing, rollback]
