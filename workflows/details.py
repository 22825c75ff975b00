"""The markdown the Temporal Web UI shows as a deployment's current details."""

from __future__ import annotations

from datetime import timedelta

from sluicegate.spec import DeploymentSpec
from workflows.state import WATCHING, BakeClock, DeploymentStatus


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
    if status.baseline_lines:
        heading = "Stable before the deployment"
        if (baseline := status.baseline) is not None:
            measured = span(timedelta(seconds=baseline.seconds))
            heading += f" ({measured}, {baseline.requests} requests)"
        lines += ["", f"{heading}:", *(f"- {line}" for line in status.baseline_lines)]
    if status.bake is not None and (watched := watched_line(status.bake)) is not None:
        lines += ["", f"Bake: {watched}"]
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


def span(duration: timedelta) -> str:
    """2m, 1m 30s, 1h 5m, 45s: a measured duration, to the second."""
    seconds = round(max(duration.total_seconds(), 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{seconds}s" if seconds or not (hours or minutes) else "")
    return " ".join(part for part in parts if part)


def watched_line(bake: BakeClock, left: timedelta | None = None) -> str | None:
    """`watched 28m of 30m bake (2m unwatched, made up)`, once some of it was unwatched;
    `left` is what is left now (by default: when the deployment last changed)."""
    if bake.unwatched <= timedelta(0):
        return None
    made_up = "made up" if bake.made_up >= bake.unwatched else "to be made up"
    return (
        f"watched {span(bake.watched(left))} of {span(bake.total)} bake "
        f"({span(bake.unwatched)} unwatched, {made_up})"
    )


def _stage_state(index: int, status: DeploymentStatus) -> str:
    if status.stage_index is None or index > status.stage_index:
        return "pending"
    if index < status.stage_index or status.phase in ("promoting", "promoted"):
        return "done"
    return status.phase
