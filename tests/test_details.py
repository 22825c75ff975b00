"""The Web UI's current details: a stage table that says where the deployment is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.scripted import a_baseline, a_status, make_spec
from sluicegate.analysis.verdict import Verdict
from sluicegate.contracts import BakeClock, CheckReport, DeploymentStatus
from sluicegate.describe import short_duration, span, watched_line
from sluicegate.evidence import TrendPoint
from workflows.details import render_details


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


def test_the_latest_checks_trend_is_drawn_canary_against_stable() -> None:
    trend = tuple(
        TrendPoint(canary=canary, stable=0.01) for canary in (0.01, 0.01, None, 0.05, 0.2)
    )
    check = CheckReport(
        stage="pilot",
        at=datetime.now(UTC),
        number=5,
        verdict=Verdict(status="breach", results=()),
        trend=trend,
    )
    text = render_details(make_spec(), a_status(latest_check=check))
    assert "Trend of the last 5 checks:" in text
    # One scale for both: the worst check is the top, stable's 1% a low bar; a gap a space.
    assert "- `canary errors ▁▁ ▃█ (0 to 20%)`" in text
    assert "- `stable errors ▁▁▁▁▁`" in text


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


def test_stable_before_the_deployment_is_listed_rule_by_rule() -> None:
    spec = make_spec()
    baseline = a_baseline()
    lines = baseline.lines(spec.analysis)
    text = render_details(spec, a_status(baseline=baseline, baseline_lines=lines))
    assert (
        "Stable before the deployment (1m, 10000 requests):\n"
        "- stable within error_rate ≤ 1% (0.3% measured)\n"
        "- stable within latency_p99_ms ≤ 200 (0.5% slower than 200 ms measured)\n"
        "- stable already breaches availability ≥ 99.9% (99.7% measured)\n"
    ) in text
    unknown = ("stable could not be measured (no data): limits are held as written",)
    text = render_details(
        spec, a_status(no_baseline="could not be measured", baseline_lines=unknown)
    )
    assert f"Stable before the deployment:\n- {unknown[0]}" in text
    assert "Stable before" not in render_details(spec, a_status())  # older deployments


def test_the_bake_says_how_much_of_it_was_watched() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    total, two = timedelta(minutes=30), timedelta(minutes=2)
    # Learned 20 minutes into the bake: the end moved by the 2 minutes to make up.
    learned = BakeClock(total=total, left=timedelta(minutes=12), ends_at=now, unwatched=two)
    assert learned.watched() == timedelta(minutes=18)
    assert watched_line(learned) == "watched 18m of 30m bake (2m unwatched, to be made up)"
    # The bake's timer ran out: 2 minutes more, made up.
    making_up = learned.model_copy(update={"left": two, "made_up": two})
    assert watched_line(making_up) == "watched 28m of 30m bake (2m unwatched, made up)"
    assert watched_line(making_up, left=timedelta(0)) == (
        "watched 30m of 30m bake (2m unwatched, made up)"
    )
    text = render_details(make_spec(), a_status(bake=making_up))
    assert "Bake: watched 28m of 30m bake (2m unwatched, made up)" in text
    watched = BakeClock(total=total, left=timedelta(minutes=12), ends_at=now)
    assert watched_line(watched) is None
    assert "Bake:" not in render_details(make_spec(), a_status(bake=watched))


def test_spans_to_the_second() -> None:
    assert span(timedelta(minutes=2)) == "2m"
    assert span(timedelta(seconds=90.4)) == "1m 30s"
    assert span(timedelta(hours=1, minutes=5)) == "1h 5m"
    assert span(timedelta(seconds=31.6)) == "32s"
    assert span(timedelta(0)) == "0s"


def test_what_deployments_published_before_these_fields_still_decodes() -> None:
    old = a_status(bake={"total": "PT30M", "left": "PT10M", "ends_at": None}).model_dump(
        mode="json", exclude={"baseline", "no_baseline", "baseline_lines"}
    )
    del old["bake"]["unwatched"], old["bake"]["made_up"]
    status = DeploymentStatus.model_validate(old)
    assert (status.baseline, status.no_baseline, status.baseline_lines) == (None, None, ())
    assert status.bake is not None and status.bake.unwatched == timedelta(0)
    check = CheckReport.model_validate(
        {"at": "2024-01-01T00:00:00Z", "number": 3, "verdict": {"status": "healthy", "results": []}}
    )
    assert check.unwatched == timedelta(0)
