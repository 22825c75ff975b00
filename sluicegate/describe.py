"""How a plan, a stage and a duration read: the same words in the workflow's
notifications and details, and in every front end."""

from __future__ import annotations

from datetime import timedelta

from sluicegate.contracts import BakeClock
from sluicegate.spec import DeploymentSpec, Stage


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


def stage_plan(stage: Stage) -> str:
    """`canary 25% for 30m, then a manual gate`."""
    gate = ", then a manual gate" if stage.manual_gate else ""
    return f"{stage.name} {stage.weight}% for {short_duration(stage.bake)}{gate}"


def plan(spec: DeploymentSpec) -> str:
    """The whole plan in one line, as the Web UI's static details and the started
    notification show it."""
    stages = "; ".join(stage_plan(stage) for stage in spec.stages)
    if spec.stages[-1].weight < 100:
        stages += "; then 100%"
    checks = f"checks every {short_duration(spec.analysis.interval)}"
    return f"{spec.stable.version} → {spec.canary.version}: {stages}; {checks}."


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
