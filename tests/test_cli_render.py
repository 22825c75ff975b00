"""How the CLI words things: durations, one-line statuses and controls, the preflight's
overall verdict, the bake bar, default reasons and `--help`. Pure helpers, rendered to plain
text."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from bench.scripted import a_status
from frontends.cli.app import app, flowed
from frontends.cli.render import bake_bar, overall, status_view
from frontends.cli.session import operator
from frontends.client.lines import ago, control_line, hook_lines, human, status_line
from frontends.client.operations import default_reason, fitted
from sluicegate.analysis.verdict import MetricResult, Status, Verdict
from sluicegate.contracts import (
    MAX_BY,
    MAX_REASON,
    BakeClock,
    CheckReport,
    ControlInput,
    ControlRecord,
    Finding,
    HookResult,
    PreflightReport,
)
from sluicegate.evidence import TrendPoint

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def control(**changes: object) -> ControlRecord:
    base: dict[str, object] = {"action": "promote", "by": "alice", "reason": "", "at": NOW}
    return ControlRecord.model_validate({**base, **changes})


def verdict(status: Status) -> Verdict:
    result = MetricResult(
        metric="error_rate",
        window="check",
        value=None if status == "inconclusive" else 0.5,
        bound=0.01,
        direction="max",
        requests=100,
        status=status,
    )
    return Verdict(status=status, results=(result,))


def report(canary: Verdict | None, stable: Verdict | None) -> PreflightReport:
    ok = Finding(name="ok", ok=True, detail="fine")
    return PreflightReport(
        router=ok,
        router_state=None,
        metrics=ok,
        backup=ok,
        canary=canary,
        stable=stable,
        window_seconds=5.0,
    )


def text_of(renderable: RenderableType) -> str:
    console = Console(record=True, width=120)
    console.print(renderable)
    return console.export_text()


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=59.9), "59s"),
        (timedelta(minutes=1), "1m"),
        (timedelta(minutes=20, seconds=34), "20m 34s"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=3, minutes=5, seconds=9), "3h 5m"),
        (timedelta(days=1, hours=2), "1d 2h"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_human(duration: timedelta, expected: str) -> None:
    assert human(duration) == expected


def test_ago_counts_back_from_now() -> None:
    assert ago(NOW - timedelta(minutes=3), now=NOW) == "3m ago"
    assert ago(NOW - timedelta(days=5, hours=1), now=NOW) == "5d 1h ago"


def test_ago_without_a_moment() -> None:
    assert ago(None, now=NOW) == "-"


# --- one-line summaries ------------------------------------------------------------------


def test_status_line_shows_the_stage_and_weight() -> None:
    assert status_line(a_status()) == (
        "checkout v1 → v2: progressing, stage pilot (2/3), canary 25%"
    )


def test_status_line_without_a_stage() -> None:
    line = status_line(a_status(phase="backing_up", stage=None, stage_index=None, canary_weight=0))
    assert line == "checkout v1 → v2: backing_up, canary 0%"


@pytest.mark.parametrize(
    ("phase", "paused", "shown"),
    [
        ("progressing", False, "progressing"),
        ("paused", True, "paused"),
        ("paused", False, "resuming"),
        ("progressing", True, "pausing"),
        ("awaiting_approval", True, "awaiting_approval"),
    ],
)
def test_status_line_shows_a_control_taking_effect(phase: str, paused: bool, shown: str) -> None:
    line = status_line(a_status(phase=phase, paused=paused))
    assert line == f"checkout v1 → v2: {shown}, stage pilot (2/3), canary 25%"


def test_control_line_full_promotion_with_a_reason() -> None:
    line = control_line(control(full=True, reason="looks good"))
    assert line == "promote --full by alice: looks good"


def test_control_line_without_a_reason() -> None:
    assert control_line(control(action="abort", by="bob")) == "abort by bob"
    assert control_line(control()) == "promote by alice"


# --- the preflight's overall verdict -----------------------------------------------------


def hook(**changes: object) -> HookResult:
    base: dict[str, object] = {"name": "up", "kind": "smoke", "ok": True, "detail": "10 passed"}
    return HookResult.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("event", "weight", "shown"),
    [
        ("smoke", 0, "[smoke before any traffic] hook up (smoke) passed: 10 passed (0.0 s)"),
        ("smoke", 100, "[smoke at 100%] hook up (smoke) passed"),
        ("pre_stage", 25, "[pre_stage] hook up (smoke) passed"),
        (None, None, "[hook] hook up (smoke) passed"),  # a result recorded before 0.2
    ],
)
def test_a_hook_line_says_when_it_ran(event: str | None, weight: int | None, shown: str) -> None:
    [line] = hook_lines(hook(event=event, weight=weight))
    assert line.strip().startswith(shown)


def test_a_command_hook_shows_what_it_printed_and_a_failed_hook_its_evidence() -> None:
    command = hook(kind="command", event="pre_rollout", output="started v2\nstarted v2b")
    assert hook_lines(command)[1:] == ["      started v2", "      started v2b"]
    assert hook_lines(hook(output="GET / -> 503"))[1:] == []  # a passing smoke: one line
    failed = hook(ok=False, event="smoke", weight=0, output="GET / -> 503")
    assert hook_lines(failed)[1:] == ["      GET / -> 503"]


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        ("healthy", "healthy", "healthy"),
        ("breach", "healthy", "breach"),
        ("healthy", "breach", "breach"),
        ("inconclusive", "breach", "breach"),
        ("inconclusive", "healthy", "inconclusive"),
        ("healthy", "inconclusive", "healthy"),
        ("healthy", None, "healthy"),
        (None, "healthy", "inconclusive"),
        (None, None, "inconclusive"),
    ],
)
def test_overall(canary: Status | None, stable: Status | None, expected: str) -> None:
    built = report(
        verdict(canary) if canary else None,
        verdict(stable) if stable else None,
    )
    assert overall(built) == expected


# --- the bake bar ------------------------------------------------------------------------


def test_bake_bar_while_baking_shows_the_time_left() -> None:
    bake = BakeClock(
        total=timedelta(minutes=30),
        left=timedelta(minutes=30),
        ends_at=NOW + timedelta(minutes=20, seconds=34),
    )

    text = text_of(bake_bar(bake, now=NOW))

    assert "bake: 20m 34s left of 30m" in text
    assert "paused" not in text


def test_bake_bar_after_the_end_shows_nothing_left() -> None:
    bake = BakeClock(total=timedelta(minutes=30), left=timedelta(0), ends_at=NOW)

    assert "bake: 0s left of 30m" in text_of(bake_bar(bake, now=NOW + timedelta(minutes=5)))


def test_bake_bar_while_paused_shows_the_frozen_time_left() -> None:
    bake = BakeClock(total=timedelta(hours=1), left=timedelta(minutes=12), ends_at=None)

    text = text_of(bake_bar(bake, now=NOW))

    assert "bake paused: 12m left of 1h" in text


def test_status_view_shows_stable_before_the_deployment_and_the_unwatched_bake() -> None:
    bake = BakeClock(
        total=timedelta(minutes=30),
        left=timedelta(minutes=4),
        ends_at=None,
        unwatched=timedelta(minutes=2),
        made_up=timedelta(minutes=2),
    )
    status = a_status(
        bake=bake,
        baseline_lines=("stable already breaches availability ≥ 99.9% (99.7% measured)",),
    )
    console = Console(width=200, record=True)
    console.print(status_view(status, None))
    shown = console.export_text()
    assert "stable before the deployment: stable already breaches availability" in shown
    assert "(2m unwatched, made up)" in shown


def test_status_view_draws_the_trend_of_the_last_checks() -> None:
    check = CheckReport(
        stage="pilot",
        at=NOW,
        number=3,
        verdict=Verdict(status="healthy", results=()),
        trend=(TrendPoint(canary=0.0, stable=0.0), TrendPoint(canary=0.04, stable=0.0)),
    )
    console = Console(width=200, record=True)
    console.print(status_view(a_status(), check))
    shown = console.export_text()
    assert "trend, last 2 checks:" in shown
    assert "canary errors ▁█ (0 to 4%)" in shown and "stable errors ▁▁" in shown


def test_a_control_without_a_reason_records_where_it_came_from() -> None:
    assert default_reason("abort", "Slack") == "aborted from Slack"
    assert default_reason("rollback", "the CLI") == "rolled back from the CLI"


def test_help_paragraphs_flow_and_keep_their_breaks_and_examples() -> None:
    text = "First line.\n\nOne sentence\n    wrapped in the source.\nExample: [bold]x[/]\n\nLast."
    assert flowed(text) == (
        "First line.\n\nOne sentence wrapped in the source.\nExample: [bold]x[/]\n\nLast."
    )
    assert flowed(None) is None


@pytest.mark.parametrize("columns", [100, 80])
def test_help_wraps_at_the_terminal_not_where_the_docstring_did(columns: int) -> None:
    done = CliRunner().invoke(app, ["rollback", "--help"], env={"COLUMNS": str(columns)})
    assert done.exit_code == 0, done.output
    shown = [line.strip() for line in done.output.splitlines()]
    start = next(i for i, line in enumerate(shown) if line.startswith("While a deployment"))
    paragraph = shown[start : shown.index("", start)]
    assert " ".join(paragraph).startswith(
        "While a deployment runs: abort it and wait for its rollback. After a promotion: "
        "restore the routing from before that deployment (straight to 100% of the previous "
        "version, verified by read-back)"
    )
    assert all(len(line) > columns - 15 for line in paragraph[:-1]), paragraph  # filled
    assert any(line.startswith("Example: sluice rollback checkout") for line in shown)


def test_what_we_add_to_a_persons_words_never_makes_a_control_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollback prefixes its reason; the CLI records user@host: both fit their limits."""
    prefixed = fitted("roll back v2 (promoted by run 1234): " + "x" * MAX_REASON, MAX_REASON)
    assert len(prefixed) == MAX_REASON and prefixed.endswith("…")
    assert fitted("short", MAX_REASON) == "short"
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 300)
    by = operator()
    assert len(by) == MAX_BY
    assert ControlInput(by=by, reason=prefixed).by == by
