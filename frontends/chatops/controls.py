"""Run an authorized command through `frontends.client.operations`: one path for Slack
and the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from frontends.chatops.commands import Command
from frontends.client.history import DeploymentRecord
from frontends.client.lines import control_line, ended_line, status_line
from frontends.client.operations import control, current, default_reason, json_data, rollback
from sluicegate.contracts import (
    Action,
    ControlInput,
    DeploymentResult,
    DeploymentStatus,
    PromoteInput,
)
from sluicegate.errors import (
    ControlRefused,
    DeploymentAlreadyRunning,
    DeploymentNotFound,
    NoWorker,
    SluicegateError,
    SpecError,
)

log = logging.getLogger(__name__)
Kind = Literal["ok", "refused", "not_found", "invalid", "unavailable", "error"]


@dataclass(frozen=True)
class Outcome:
    """What happened, for people (`message`) and for programs (`kind`, `data`)."""

    kind: Kind
    message: str
    data: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


@dataclass(frozen=True)
class Controls:
    """Temporal and the task queue a rollback's restore runs on."""

    client: Client
    task_queue: str

    async def execute(
        self, command: Command, by: str, origin: str, run_id: str | None = None
    ) -> Outcome:
        """Run `command` for `by`; never raises: every failure is an Outcome naming why."""
        try:
            return await self._execute(command, by, origin, run_id)
        except (ControlRefused, DeploymentAlreadyRunning) as err:
            return Outcome("refused", f"refused: {err}")
        except DeploymentNotFound as err:
            return Outcome("not_found", str(err))
        except SpecError as err:
            return Outcome("invalid", "; ".join(err.problems))
        except NoWorker as err:
            return Outcome("unavailable", str(err))
        except RPCError as err:
            log.warning("Temporal refused %s %s: %s", command.action, command.service, err)
            return Outcome("unavailable", f"Temporal said: {err.message}")
        except SluicegateError as err:  # e.g. Temporal unreachable
            return Outcome("unavailable", str(err))
        except Exception:
            log.exception("%s %s for %s failed", command.action, command.service, by)
            return Outcome("error", f"{command.action} {command.service} failed unexpectedly")

    async def _execute(self, command: Command, by: str, origin: str, run_id: str | None) -> Outcome:
        if command.action == "status":
            return await self._status(command.service)
        reason, note = command.reason, ""
        if not reason and command.action in ("abort", "rollback"):
            reason = default_reason(command.action, origin)
            note = f' (no reason given; recorded as "{reason}")'
        if command.action == "rollback":
            return await self._rollback(command.service, ControlInput(by=by, reason=reason), note)
        action: Action = command.action  # status and rollback are handled above
        if action == "promote":
            request = PromoteInput(by=by, reason=reason, full=command.full)
        else:
            request = ControlInput(by=by, reason=reason)
        status = await control(self.client, command.service, action, request, run_id=run_id)
        text = f"{action}: accepted{note}. {status_text(status)}"
        return Outcome("ok", text, {"status": _json(status)})

    async def _status(self, service: str) -> Outcome:
        state = await current(self.client, service)
        if isinstance(state, DeploymentRecord):
            return Outcome("ok", ended_line(state), {"deployment": _json(state)})
        return Outcome("ok", status_text(state), {"status": _json(state)})

    async def _rollback(self, service: str, request: ControlInput, note: str) -> Outcome:
        result = await rollback(self.client, self.task_queue, service, request)
        if isinstance(result, DeploymentResult):
            text = f"{result.service} {result.canary_version}: {result.outcome}: {result.reason}"
        else:
            text = f"{service}: restored backup {result.backup_id}; router now reads "
            text += result.state.describe()
        return Outcome("ok", text + note, {"result": _json(result)})


def status_text(status: DeploymentStatus) -> str:
    """One line of state, then the controls so far, e.g. for a chat message."""
    lines = [status_line(status)]
    if status.reason:
        lines.append(f"reason: {status.reason}")
    lines += [f"operator: {control_line(record)}" for record in status.controls]
    return "\n".join(lines)


def _json(model: BaseModel) -> dict[str, Any]:
    return json_data(model)
