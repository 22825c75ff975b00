"""The markdown the Temporal Web UI shows as a deployment's current details."""

from __future__ import annotations

from sluicegate.spec import DeploymentSpec
from workflows.state import DeploymentStatus


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
            f"| {stage.name} | {stage.weight}% | {stage.bake} | "
            f"{'manual' if stage.manual_gate else '-'} | {_stage_state(index, status)} |"
        )
    if status.latest_check is not None:
        check = status.latest_check
        lines += [
            "",
            f"Latest check #{check.number}: {check.verdict.status}: {check.verdict.describe()}",
        ]
    if status.reason:
        lines += ["", f"Reason: {status.reason}"]
    return "\n".join(lines)


def _stage_state(index: int, status: DeploymentStatus) -> str:
    if status.stage_index is None or index > status.stage_index:
        return "pending"
    if index < status.stage_index or status.phase in ("promoting", "promoted"):
        return "done"
    return status.phase
