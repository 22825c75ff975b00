"""What the Temporal Web UI shows of a deployment: its search attributes, and the markdown
of its current details."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from sluicegate import visibility
    from sluicegate.contracts import WATCHING, DeploymentStatus, Outcome, Phase
    from sluicegate.describe import short_duration, span, watched_line
    from sluicegate.evidence import trend_lines
    from sluicegate.spec import DeploymentSpec, service_name_problem


class Visibility:
    """Search attributes when what they show changed; the current details every time."""

    def __init__(self) -> None:
        self._shown: tuple[Phase, int, Outcome | None] | None = None

    def publish(
        self, spec: DeploymentSpec, status: DeploymentStatus, outcome: Outcome | None = None
    ) -> None:
        shown = (status.phase, status.canary_weight, outcome)
        if shown != self._shown:
            updates = [
                visibility.DEPLOY_SERVICE.value_set(spec.service),
                visibility.DEPLOY_PHASE.value_set(status.phase),
                visibility.DEPLOY_CANARY_WEIGHT.value_set(status.canary_weight),
                visibility.DEPLOY_CANARY_VERSION.value_set(spec.canary.version),
            ]
            if outcome is not None:
                updates.append(visibility.DEPLOY_OUTCOME.value_set(outcome))
            upsert_search_attributes(updates)
            self._shown = shown
        workflow.set_current_details(render_details(spec, status))


def publish_refused(service: object) -> None:
    """What a refused spec can say for itself: its service, if it names a valid one, and
    the outcome `failed`, so `sluice history SERVICE` lists it."""
    updates = [visibility.DEPLOY_OUTCOME.value_set("failed")]
    if isinstance(service, str) and service_name_problem(service) is None:
        updates.append(visibility.DEPLOY_SERVICE.value_set(service))
    upsert_search_attributes(updates)


def upsert_search_attributes(updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """`workflow.upsert_search_attributes`, typed: temporalio annotates its argument as a
    sequence of bare `SearchAttributeUpdate`, without the value type."""
    workflow.upsert_search_attributes(updates)  # pyright: ignore[reportUnknownMemberType]


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
        if (trend := trend_lines(check.trend)) is not None:
            lines += [
                "",
                f"Trend of the last {len(check.trend)} checks:",
                *(f"- `{t}`" for t in trend),
            ]
    if status.hooks:
        lines += ["", "Hooks:"]
        lines += [f"- {hook.describe()}" for hook in status.hooks[-10:]]
    if status.reason:
        lines += ["", f"Reason: {status.reason}"]
    if status.notification_failures:
        lines += ["", "Notifications not delivered:"]
        lines += [f"- {failure}" for failure in status.notification_failures[-5:]]
    return "\n".join(lines)


def _stage_state(index: int, status: DeploymentStatus) -> str:
    if status.stage_index is None or index > status.stage_index:
        return "pending"
    if index < status.stage_index or status.phase in ("guarding", "promoting", "promoted"):
        return "done"
    return status.phase
