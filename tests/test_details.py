"""The Web UI's current details: a stage table that says where the deployment is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sluicegate.analysis.verdict import Verdict
from sluicegate.contracts import CheckReport
from tests.scripted import a_status, make_spec
from workflows.details import render_details, short_duration


def test_the_table_marks_done_current_and_pending_stages() -> None:
    text = render_details(make_spec(), a_status())
    assert "**checkout**: v1 → v2 · phase **progressing** · canary at **25%**" in text
    assert "| canary | 5% | 30m | - | done |" in text
    assert "| pilot | 25% | 1h | - | progressing |" in text
    assert "| gradual | 50% | 2h | - | pending |" in text
    assert "Live checks: the `watch_health` heartbeat" in text


def test_latest_check_and_reason_are_shown() -> None:
    check = CheckReport(
        stage="pilot", at=datetime.now(UTC), number=4, verdict=Verdict(status="healthy", results=())
    )
    text = render_details(
        make_spec(), a_status(phase="rolling_back", latest_check=check, reason="aborted by ops")
    )
    assert "Latest reported check #4: healthy" in text
    assert "Reason: aborted by ops" in text
    assert "Live checks" not in text


def test_short_durations() -> None:
    assert short_duration(timedelta(minutes=30)) == "30m"
    assert short_duration(timedelta(hours=2)) == "2h"
    assert short_duration(timedelta(seconds=90)) == "90s"
    assert short_duration(timedelta(milliseconds=1500)) == "1.5s"


def test_what_a_source_could_not_get_is_shown_with_the_check() -> None:
    missing = 'canary: no data for sum(http_requests_total{version="v2"})'
    check = CheckReport(
        at=datetime(2024, 1, 1, tzinfo=UTC),
        number=4,
        verdict=Verdict(status="inconclusive", results=()),
        notes=(missing,),
    )
    assert check.describe().endswith(missing)
    text = render_details(make_spec(), a_status(latest_check=check))
    assert f"Latest reported check #4: inconclusive: {missing}" in text


def test_notifications_that_failed_are_shown() -> None:
    failures = tuple(f"stage_advanced → pager: HTTP 503 (attempt 3 of 3) #{n}" for n in range(7))
    text = render_details(make_spec(), a_status(notification_failures=failures))
    assert "Notifications not delivered:" in text
    assert "#6" in text and "#1" not in text  # the latest five
