"""Operator activities: back up now, list backups, try a spec's router, metrics and store.

They run on the worker because only the worker is sure to reach the router, the metric
source and the backup directory; the CLI reaches them through short workflows.
"""

from __future__ import annotations

import time

from temporalio import activity

from activities import backup_store
from activities.errors import temporal_errors
from activities.heartbeats import heartbeating, sleep_heartbeating
from activities.metrics import SourceContext, analysis_source
from activities.routers import router_for
from sluicegate.analysis import judge_once, measure_baseline
from sluicegate.analysis.advice import spec_warnings
from sluicegate.analysis.samples import Sample
from sluicegate.contracts import (
    LIST_BACKUPS,
    PREFLIGHT,
    SNAPSHOT,
    BackupList,
    BackupRecord,
    Finding,
    ListBackupsInput,
    PreflightInput,
    PreflightReport,
    RouterState,
    SnapshotInput,
)
from sluicegate.errors import SluicegateError, SpecError
from sluicegate.spec import DeploymentSpec


@activity.defn(name=SNAPSHOT)
@temporal_errors
@heartbeating
async def snapshot(request: SnapshotInput) -> BackupRecord:
    """Back up the routing exactly as it is now, verified by reading the files back."""
    state = await router_for(request.router).read_state()
    directory = request.backup.directory
    return backup_store.write_backup(directory, request.service, request.label, state)


@activity.defn(name=LIST_BACKUPS)
@temporal_errors
async def list_backups(request: ListBackupsInput) -> BackupList:
    """The service's backups, newest first, each verified against its checksum."""
    entries = backup_store.list_backups(request.backup.directory, request.service)
    return BackupList(entries=tuple(entries))


@activity.defn(name=PREFLIGHT)
@temporal_errors
async def preflight(request: PreflightInput) -> PreflightReport:
    """Try everything a deployment of `spec` will need, and judge one check of health.

    Problems are findings, not failures: the report says what is wrong with each part.
    """
    spec = request.spec
    router, state = await _check_router(spec)
    metrics, first, last = await _check_metrics(spec)
    if first is None or last is None:
        return PreflightReport(
            router=router,
            router_state=state,
            metrics=metrics,
            backup=_check_backup(spec),
            canary=None,
            stable=None,
            window_seconds=0.0,
        )
    stable = measure_baseline(first, last, spec.analysis)
    return PreflightReport(
        router=router,
        router_state=state,
        metrics=metrics,
        backup=_check_backup(spec),
        canary=judge_once(first, last, spec.analysis, "canary"),
        stable=judge_once(first, last, spec.analysis, "stable"),
        window_seconds=(last.at - first.at).total_seconds(),
        baseline=stable,
        warnings=tuple(spec_warnings(spec.analysis, spec.stages, stable)),
    )


async def _check_router(spec: DeploymentSpec) -> tuple[Finding, RouterState | None]:
    try:
        state = await router_for(spec.router).read_state()
    except SluicegateError as err:
        return Finding(name="router", ok=False, detail=f"{spec.router.type}: {err}"), None
    problems: list[str] = []
    if (problem := state.stable_problem(spec.stable.endpoints)) is not None:
        problems.append(problem)
    problems += _unroutable(spec, state)
    if state.canary_weight != 0:
        problems.append(f"canary weight is {state.canary_weight}%, a deployment needs 0%")
    detail = "; ".join([f"reads {state.describe()}", *problems])
    return Finding(name="router", ok=not problems, detail=detail), state


def _unroutable(spec: DeploymentSpec, state: RouterState) -> list[str]:
    """Why the router could not carry one of the stages, if it could not."""
    router = router_for(spec.router)
    weights = [stage.weight for stage in spec.stages]
    problems: list[str] = []
    for routing in state.shifted(spec.canary.endpoints, weights):
        try:
            router.check(routing)
        except SpecError as err:
            problems.append(f"stage at {routing.canary_weight}%: {err}")
    return problems


async def _check_metrics(spec: DeploymentSpec) -> tuple[Finding, Sample | None, Sample | None]:
    """Two samples one check interval apart: the stable version must have served requests."""
    context = SourceContext(
        service=spec.service,
        stable_version=spec.stable.version,
        canary_version=spec.canary.version,
        interval=spec.analysis.interval,
    )
    source = analysis_source(spec.analysis, context)
    try:
        first = await source.collect()
        await sleep_heartbeating(time.monotonic() + spec.analysis.interval.total_seconds())
        last = await source.collect()
    except SluicegateError as err:
        return Finding(name="metrics", ok=False, detail=str(err)), None, None
    if first.stable is None or last.stable is None:
        detail = "no data for the stable version"
        return Finding(name="metrics", ok=False, detail=detail), first, last
    requests = last.stable.since(first.stable).requests
    seconds = (last.at - first.at).total_seconds()
    detail = f"stable served {requests} requests in {seconds:.1f} s"
    if requests == 0:
        detail += ": no traffic to judge a canary against"
    return Finding(name="metrics", ok=requests > 0, detail=detail), first, last


def _check_backup(spec: DeploymentSpec) -> Finding:
    try:
        folder = backup_store.check_writable(spec.backup.directory, spec.service)
    except OSError as err:
        detail = f"cannot write to {spec.backup.directory}: {err.strerror or err}"
        return Finding(name="backup", ok=False, detail=detail)
    return Finding(name="backup", ok=True, detail=f"{folder} is writable")


OPERATOR_ACTIVITIES = [snapshot, list_backups, preflight]
