"""The operator controls of a deployment: what was asked, whether it makes sense now, and
the Temporal handlers that receive it (a signal to fire and forget, an update to get an
answer: the same rules for both)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import (
        FINISHED,
        Action,
        ControlInput,
        ControlRecord,
        DeploymentStatus,
        Phase,
        PromoteInput,
        Resumption,
    )

Request = TypeVar("Request", bound=ControlInput)


class Controls:
    """What operators have asked of the deployment so far."""

    def __init__(self) -> None:
        self.records: list[ControlRecord] = []
        self.paused = False
        self.pending_promote: ControlRecord | None = None
        self.abort: ControlRecord | None = None

    def refusal(self, action: Action, phase: Phase) -> str | None:
        """Why `action` makes no sense in `phase`, or None if it does."""
        if phase in FINISHED:
            return f"deployment already {phase}"
        if phase in ("rolling_back", "failed"):
            return "deployment is rolling back"
        if phase == "promoting":
            return "deployment is already promoting to 100%"
        if self.abort is not None:
            return f"deployment is being aborted (by {self.abort.by})"
        if action == "pause" and (self.paused or phase not in ("progressing", "guarding")):
            return "already paused" if self.paused else f"nothing to pause while {phase}"
        if action == "resume" and not self.paused:
            return "deployment is not paused"
        if action == "promote" and phase in ("validating", "backing_up", "measuring_baseline"):
            return f"nothing to promote yet ({phase})"
        return None

    def accept(
        self, action: Action, request: ControlInput, phase: Phase, at: datetime
    ) -> ControlRecord | None:
        """Record and apply `action`; None (and a log line) if it makes no sense now."""
        refusal = self.refusal(action, phase)
        if refusal is not None:
            workflow.logger.warning("ignored %s from %s: %s", action, request.by, refusal)
            return None
        record = ControlRecord(
            action=action,
            by=request.by,
            reason=request.reason,
            at=at,
            full=isinstance(request, PromoteInput) and request.full,
        )
        self.records.append(record)
        if action == "promote":
            self.pending_promote = record
            self.paused = False
        elif action == "abort":
            self.abort = record
        else:
            self.paused = action == "pause"
        return record

    def carry_over(self, resumed: Resumption) -> None:
        """The controls of the deployment's previous run, as this run's."""
        self.records = list(resumed.controls)
        self.paused = resumed.paused
        self.pending_promote = resumed.pending_promote
        self.abort = resumed.abort

    def pause_for_a_person(self, reason: str, at: datetime) -> ControlRecord:
        """Sluicegate pauses the deployment itself (no data past the limit)."""
        record = ControlRecord(action="pause", by="sluicegate", reason=reason, at=at)
        self.records.append(record)
        self.paused = True
        return record

    def take_promote(self) -> ControlRecord | None:
        """The promote that ended the stage, if one did; the next stage starts without it."""
        promote, self.pending_promote = self.pending_promote, None
        return promote


class Steerable(Protocol):
    """What a workflow offers its control handlers."""

    def control(self, action: Action, request: ControlInput) -> None: ...

    def validate(self, action: Action) -> None: ...

    def status(self) -> DeploymentStatus: ...


def control_handlers(
    action: Action, request_type: type[Request]
) -> tuple[
    Callable[[Any, Request | None], None],
    workflow.UpdateMethodMultiParam[[Any, Request | None], DeploymentStatus],
]:
    """The signal and the update (with its validator) named `action`, for a workflow class
    body: `pause_signal, pause_update = control_handlers("pause", ControlInput)`."""

    def on_signal(self: Steerable, request: Request | None = None) -> None:
        self.control(action, request or request_type())

    def on_update(self: Steerable, request: Request | None = None) -> DeploymentStatus:
        self.control(action, request or request_type())
        return self.status()

    def validate(self: Steerable, request: Request | None = None) -> None:
        self.validate(action)

    # Temporal decodes a handler's argument by its annotation, so it must name the concrete
    # request type; and it takes `self` for an argument unless `self` is unannotated.
    for handler in (on_signal, on_update, validate):
        handler.__annotations__["request"] = request_type | None
        del handler.__annotations__["self"]
    on_signal.__name__ = on_signal.__qualname__ = f"{action}_signal"
    on_update.__name__ = on_update.__qualname__ = f"{action}_update"
    update = workflow.update(name=action)(on_update)
    update.validator(validate)
    return workflow.signal(name=action)(on_signal), update
