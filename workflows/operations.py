"""Short workflows that run one operator activity on the worker, where the router, the
metric source and the backup store are reachable: `sluice backup`, `backups`, `test`, `health`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import (
        LIST_BACKUPS,
        PREFLIGHT,
        SNAPSHOT,
        BackupList,
        BackupRecord,
        ListBackupsInput,
        PreflightInput,
        PreflightReport,
        SnapshotInput,
    )

QUICK = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=3,
    non_retryable_error_types=["SpecError", "RouterMisconfigured"],
)


@workflow.defn(name="SnapshotRouting")
class SnapshotRouting:
    @workflow.run
    async def run(self, request: SnapshotInput) -> BackupRecord:
        return await workflow.execute_activity(
            SNAPSHOT,
            request.model_copy(update={"label": workflow.info().run_id}),
            result_type=BackupRecord,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=QUICK,
            summary=f"back up {request.service}'s routing",
        )


@workflow.defn(name="ListBackups")
class ListBackups:
    @workflow.run
    async def run(self, request: ListBackupsInput) -> BackupList:
        return await workflow.execute_activity(
            LIST_BACKUPS,
            request,
            result_type=BackupList,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=QUICK,
            summary=f"list {request.service}'s backups",
        )


@workflow.defn(name="Preflight")
class Preflight:
    @workflow.run
    async def run(self, request: PreflightInput) -> PreflightReport:
        interval = request.spec.analysis.interval
        return await workflow.execute_activity(
            PREFLIGHT,
            request,
            result_type=PreflightReport,
            start_to_close_timeout=interval + timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=QUICK,
            summary=f"try {request.spec.service}'s router, metrics and backup store",
        )


OPERATOR_WORKFLOWS = [SnapshotRouting, ListBackups, Preflight]
