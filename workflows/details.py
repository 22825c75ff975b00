"""The markdown the Temporal Web UI shows as a deployment's current details."""

from __future__ import annotations

from datetime import timedelta

from sluicegate.spec import DeploymentSpec
from workflows.state import WATCHING, DeploymentStatus


def render_details(spec: DeploymentSpec, status: DeploymentStatus) -> str:
    """A small table of the stage plan with where the deployment is, and the latest check."""
    lines = [
        f"**{spec.service}**: {spec.stable.version} → {spec.canary.version} · "
        f"phase **{status.phase}** · canary at **{status.canary_weight}%**",
        "",
        "| stage | weight | bake | gate | state |",
        "|---|---|---|---|---|",
    ]
    for index, stage in enumerate(spec.stages):
        lines.append(
            f"| {stage.name} | {stage.weight}% | {short_duration(stage.bake)} | "
            f"{'manual' if stage.manual_gate else '-'} | {_stage_state(index, status)} |"
        )
    if status.phase in WATCHING:
        lines += ["", "Live checks: the `watch_health` heartbeat, under Pending Activities."]
    if status.latest_check is not None:
        check = status.latest_check
        lines += [
            "",
            f"Latest reported check #{check.number}: {check.verdict.status}: {check.describe()}",
        ]
    if status.reason:
        lines += ["", f"Reason: {status.reason}"]
    if status.notification_failures:
        lines += ["", "Notifications not delivered:"]
        lines += [f"- {failure}" for failure in status.notification_failures[-5:]]
    return "\n".join(lines)


def short_duration(duration: timedelta) -> str:
    """30m, 2h, 1.5s: the way operators say durations."""
    seconds = duration.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _stage_state(index: int, status: DeploymentStatus) -> str:
    if status.stage_index is None or index > status.stage_index:
        return "pending"
    if index < status.stage_index or status.phase in ("promoting", "promoted"):
        return "done"
    return status.phase
