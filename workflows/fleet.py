"""A deployment's router instances and each one's backup: every shift, backup and restore
goes to all of them at once, each on the task queue of the worker that can reach it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar, cast

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import BackupRecord, InstanceRouting, RouterState
    from sluicegate.spec import DeploymentSpec, RouterSpec
    from workflows import steps
    from workflows.restore import restore_until_done, root_cause
    from workflows.steps import Routing
    from workflows.watch import Stop, Watched

T = TypeVar("T")


class Fleet:
    def __init__(self, spec: DeploymentSpec, backups: tuple[BackupRecord, ...] = ()) -> None:
        self.spec = spec
        self.instances: tuple[RouterSpec, ...] = spec.router.fleet()
        self.backups = backups  # one per instance, in order, once taken

    @property
    def backed_up(self) -> bool:
        return bool(self.backups)

    @property
    def first_backup(self) -> BackupRecord:
        assert self.backups, "no traffic moves before the backups are taken"
        return self.backups[0]

    async def back_up(self) -> None:
        """Back up every instance; any failure fails the whole (no traffic has moved)."""
        self.backups = await _every(
            steps.take_backup(self.spec, instance, self._on(instance))
            for instance in self.instances
        )

    async def apply(self, routing: Routing, summary: str) -> RouterState:
        """Route every instance as `routing` says for its backup, each verified by read-back;
        an instance that stays unreachable past its retries fails the shift (after the
        others have finished theirs), and the deployment rolls back on all."""
        shifts = [
            steps.set_traffic(instance, routing(backup), summary + self._on(instance))
            for instance, backup in self._paired()
        ]
        if len(shifts) == 1:
            return await shifts[0]
        results = await asyncio.gather(*shifts, return_exceptions=True)
        for instance, result in zip(self.instances, results, strict=True):
            if isinstance(result, ActivityError) and not is_cancelled_exception(result):
                raise Stop(
                    f"router {instance.label()} could not be set: {root_cause(result)}",
                    cause="router",
                )
            if isinstance(result, BaseException):
                raise result
        return cast(RouterState, results[0])

    async def restore(self, summary: str, on_trouble: Callable[[str | None], None]) -> RouterState:
        """Restore every instance's backup until each works; never abandoned."""

        def trouble_on(instance: RouterSpec) -> Callable[[str | None], None]:
            def told(problem: str | None) -> None:
                if problem is not None and len(self.instances) > 1:
                    problem = f"{instance.label()}: {problem}"
                on_trouble(problem)

            return told

        restoring = asyncio.ensure_future(
            _every(
                restore_until_done(
                    instance, backup, summary + self._on(instance), trouble_on(instance)
                )
                for instance, backup in self._paired()
            )
        )
        while True:
            try:
                return (await asyncio.shield(restoring))[0]
            except asyncio.CancelledError:
                continue  # a cancel that lands mid-restore: restore all the same

    def watched(self, routing: Routing) -> Watched:
        """What a stage checks for drift: the instances the deployment's own worker checks
        (None: just `spec.router`, as before fleets), and those of each other task queue."""
        if self.instances == (self.spec.router,) and self.spec.router.task_queue is None:
            return None, {}
        local: list[InstanceRouting] = []
        elsewhere: dict[str, list[InstanceRouting]] = {}
        for instance, backup in self._paired():
            checked = InstanceRouting(router=instance, expected=routing(backup))
            if instance.task_queue is None:
                local.append(checked)
            else:
                elsewhere.setdefault(instance.task_queue, []).append(checked)
        return tuple(local), {queue: tuple(each) for queue, each in elsewhere.items()}

    def _paired(self) -> list[tuple[RouterSpec, BackupRecord]]:
        assert len(self.backups) == len(self.instances), "back up before routing"
        return list(zip(self.instances, self.backups, strict=True))

    def _on(self, instance: RouterSpec) -> str:
        """How an activity's summary names the instance, in a fleet."""
        return f" on {instance.label()}" if len(self.instances) > 1 else ""


async def _every(calls: Iterable[Awaitable[T]]) -> tuple[T, ...]:
    """Run `calls` together and wait for all of them, even when one fails: a shift still in
    flight on one instance must not land after the rollback of the others. Raises the
    first failure."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return tuple(results)  # pyright: ignore[reportReturnType]  # no exceptions left
