"""Plain-text lines every front end shows (the CLI in a pipe, chat-ops, the demo):
no markup, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from frontends.client.history import DeploymentRecord
from sluicegate.contracts import (
    RESTORE_RELEASE,
    CheckReport,
    ControlRecord,
    DeploymentStatus,
    HookResult,
    SupersedeResult,
)


def human(duration: timedelta) -> str:
    """`45s`, `20m 34s`, `3h 5m`, `2d 4h`: two units at most, whole seconds."""
    seconds = max(int(duration.total_seconds()), 0)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size}{name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(part for part in parts if not part.startswith("0") or len(parts) == 1)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`3m ago`, `2h ago`, `5d ago`: how long since `moment`."""
    if moment is None:
        return "-"
    elapsed = (now or datetime.now(UTC)) - moment
    return f"{human(elapsed)} ago"


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def versions(record: DeploymentRecord) -> str:
    if record.kind == RESTORE_RELEASE:
        return "restore"
    return f"{record.stable_version or '?'} → {record.canary_version or '?'}"


def ended_line(record: DeploymentRecord) -> str:
    """`checkout: nothing running; its latest CanaryDeployment v1 → v2 ended promoted 3m ago`."""
    ended = record.outcome or record.phase or record.status.lower()
    reason = f": {record.reason}" if record.reason else ""
    return (
        f"{record.service}: nothing running; its latest {record.kind} "
        f"{versions(record)} ended {ended} {ago(record.closed_at)}{reason}"
    )


def control_line(control: ControlRecord) -> str:
    action = "promote --full" if control.full else control.action
    reason = f": {control.reason}" if control.reason else ""
    return f"{action} by {control.by}{reason}"


def status_line(status: DeploymentStatus) -> str:
    """`checkout v1 → v2: progressing, stage pilot (2/3), canary 25%`."""
    where = ""
    if status.phase == "guarding":
        where = " after the stages (old version still registered)"
    elif status.stage is not None and status.stage_index is not None:
        where = f", stage {status.stage} ({status.stage_index + 1}/{status.stages})"
    phase: str = status.phase
    if status.paused != (phase == "paused") and phase in ("progressing", "paused"):
        phase = "pausing" if status.paused else "resuming"  # the control is taking effect
    return (
        f"{status.service} {status.stable_version} → {status.canary_version}: "
        f"{phase}{where}, canary {status.canary_weight}%"
    )


def event_line(event: DeploymentStatus | CheckReport) -> str:
    """One plain line per change, for a pipe or a log: a status, or a judged check."""
    if isinstance(event, CheckReport):
        drift = f"  DRIFT: {event.drift}" if event.drift else ""
        return f"      check #{event.number:<3} {event.verdict.brief()}{drift}"
    stage = f" stage {event.stage}" if event.stage else ""
    paused = " (paused)" if event.paused else ""
    return f"  {event.phase}{stage}: canary at {event.canary_weight}%{paused}"


def hook_lines(hook: HookResult) -> list[str]:
    """`[pre_rollout] hook start-v2 (command) passed: exit 0 (0.3 s)`, then what a command
    printed, or a failed hook's evidence, indented."""
    lines = [f"  [{hook.when()}] {hook.describe()}"]
    if hook.kind == "command" or not hook.ok:
        lines.extend(f"      {line}" for line in hook.output.splitlines())
    return lines


def superseded_line(result: SupersedeResult) -> str:
    """`checkout: aborted CanaryDeployment run 0190…, which ended rolled_back: aborted by
    alice@laptop: superseded by v3`; or that nothing was running."""
    old = result.superseded
    if old is None:
        return f"{result.service}: nothing was running; {result.canary_version} starts at once"
    ended = old.outcome or old.status
    reason = f": {old.reason}" if old.reason else ""
    # "aborted": sent the abort (a run promoting or rolling back ignores it; waited for all
    # the same); a RestoreRelease is not aborted, only waited for.
    done = "aborted" if result.abort_sent else "waited for"
    return f"{result.service}: {done} {old.kind} run {old.run_id}, which ended {ended}{reason}"
