"""Short workflows that run one operator activity on the worker, where the router, the
metric source and the backup store are reachable: `sluice backup`, `backups`, `test`, `health`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

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
    from workflows.retries import QUICK_HEARTBEAT, QUICK_RETRIES


@workflow.defn(name="SnapshotRouting")
class SnapshotRouting:
    @workflow.run
    async def run(self, request: SnapshotInput) -> BackupRecord:
        return await workflow.execute_activity(
            SNAPSHOT,
            request.model_copy(update={"label": workflow.info().run_id}),
            result_type=BackupRecord,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
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
            retry_policy=QUICK_RETRIES,
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
            retry_policy=QUICK_RETRIES,
            summary=f"try {request.spec.service}'s router, metrics and backup store",
        )


OPERATOR_WORKFLOWS = [SnapshotRouting, ListBackups, Preflight]
