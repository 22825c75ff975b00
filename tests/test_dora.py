"""The pure figures of sluicegate.evidence: summaries of deployments, the DORA figures over a
window, trend sparklines, an arm's numbers from cumulative histograms, and store URLs."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from sluicegate.analysis.samples import ArmCounters, Sample, arm_window
from sluicegate.evidence import (
    ROLLBACK_VERIFIED,
    SPARKS,
    TREND_LENGTH,
    ArmNumbers,
    ChecksSeen,
    DeploymentSummary,
    EventRecord,
    StoreUrl,
    TrendPoint,
    arm_numbers,
    check_numbers,
    dora,
    extend_trend,
    sparkline,
    summarize,
    trend_lines,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
INF = math.inf


def _event(kind: str, at: datetime, weight: int | None = None, **fields: object) -> EventRecord:
    values: dict[str, object] = {
        "deployment_id": "run-1",
        "run_id": "run-1",
        "service": "checkout",
        "kind": kind,
        "at": at,
        "canary_weight": weight,
        "stable_version": "v1",
        "canary_version": "v2",
        "summary": kind,
    }
    return EventRecord.model_validate({**values, **fields})


def _minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# -- summarize -------------------------------------------------------------------------------


def test_a_refused_deployment_never_moved_traffic() -> None:
    events = [_event("started", T0, 0), _event("not_started", _minutes(1), 0, summary="busy")]
    summary = summarize("run-1", events, None)
    assert summary is not None
    assert summary.outcome == "not_started"
    assert not summary.moved_traffic
    assert summary.reason == "busy"
    assert summary.ended_at == _minutes(1)
    assert summary.duration == timedelta(minutes=1)
    assert summary.detected_at is None and summary.time_to_restore is None


def test_a_not_started_outcome_wins_over_weights_seen() -> None:
    """Even with a check at a weight (a hold that took back nothing), refused is refused."""
    checks = ChecksSeen(service="checkout", first_at=T0, max_weight=10, breach_at=None)
    events = [_event("started", T0, 10), _event("not_started", _minutes(1), 10)]
    summary = summarize("run-1", events, checks)
    assert summary is not None and not summary.moved_traffic


def test_a_rolled_back_deployment_is_detected_at_its_breaching_check() -> None:
    checks = ChecksSeen(
        service="checkout", first_at=_minutes(1), max_weight=10, breach_at=_minutes(4)
    )
    events = [
        _event("started", T0, 0),
        _event("abort_requested", _minutes(5), 10),  # after the breach: not the detection
        _event(ROLLBACK_VERIFIED, _minutes(6), 0, service="", deployment_id=""),
        _event(ROLLBACK_VERIFIED, _minutes(7), 0, service="", deployment_id=""),
        _event("rolled_back", _minutes(8), 0, summary="error_rate breached"),
    ]
    summary = summarize("run-1", events, checks)
    assert summary is not None
    assert summary.outcome == "rolled_back"
    assert summary.moved_traffic
    assert summary.detected_at == _minutes(4)
    assert summary.restored_at == _minutes(7)  # the last rollback verified
    assert summary.time_to_restore == timedelta(minutes=3)
    assert summary.reason == "error_rate breached"
    assert summary.lead_time is None


def test_an_abort_is_the_detection_when_no_check_breached() -> None:
    checks = ChecksSeen(service="checkout", first_at=_minutes(1), max_weight=25, breach_at=None)
    events = [
        _event("started", T0, 0),
        _event("breach", _minutes(6), 25),  # a later alarm does not move the detection
        _event("abort_requested", _minutes(5), 25, by="alice"),
        _event(ROLLBACK_VERIFIED, _minutes(5.5), 0, service=""),
        _event("rolled_back", _minutes(6), 0),
    ]
    summary = summarize("run-1", events, checks)
    assert summary is not None
    assert summary.detected_at == _minutes(5)
    assert summary.time_to_restore == timedelta(seconds=30)


def test_a_breach_event_is_the_detection_without_breaching_check_or_abort() -> None:
    events = [
        _event("started", T0, 0),
        _event("breach", _minutes(2), 10),
        _event(ROLLBACK_VERIFIED, _minutes(3), 0, service=""),
        _event("rolled_back", _minutes(4), 0),
    ]
    summary = summarize("run-1", events, None)
    assert summary is not None
    assert summary.detected_at == _minutes(2)
    assert summary.restored_at == _minutes(3)


def test_a_rollback_at_no_weight_still_counts_as_a_failure() -> None:
    events = [_event("started", T0, 0), _event("rolled_back", _minutes(1), 0)]
    summary = summarize("run-1", events, None)
    assert summary is not None and summary.moved_traffic
    figures = dora([summary], T0, T0 + timedelta(days=1))
    assert (figures.deployments, figures.rolled_back, figures.change_failure_rate) == (1, 1, 1.0)


def test_a_promoted_deployment_has_no_detection_or_restore() -> None:
    events = [
        _event("started", T0, 0, committed_at=T0 - timedelta(hours=2)),
        _event("stage", _minutes(1), 50),
        _event(ROLLBACK_VERIFIED, _minutes(2), 0, service=""),  # a stage's read-back, not a failure
        _event("promoted", _minutes(10), 100),
    ]
    summary = summarize("run-1", events, None)
    assert summary is not None
    assert summary.outcome == "promoted"
    assert summary.moved_traffic
    assert summary.detected_at is None and summary.restored_at is None
    assert summary.lead_time == timedelta(hours=2, minutes=10)
    assert summary.duration == timedelta(minutes=10)


def test_a_running_deployment_has_no_end() -> None:
    first = T0 - timedelta(seconds=5)
    checks = ChecksSeen(service="checkout", first_at=first, max_weight=5, breach_at=None)
    summary = summarize("run-1", [_event("started", T0, 0)], checks)
    assert summary is not None
    assert summary.outcome == "running"
    assert summary.started_at == first  # the earliest record
    assert summary.ended_at is None and summary.duration is None
    assert (summary.stable_version, summary.canary_version) == ("v1", "v2")


def test_checks_alone_make_a_summary_and_unnamed_events_alone_do_not() -> None:
    unnamed = [_event(ROLLBACK_VERIFIED, T0, 0, service="")]
    assert summarize("run-1", unnamed, None) is None
    assert summarize("run-1", [], None) is None
    checks = ChecksSeen(service="search", first_at=T0, max_weight=10, breach_at=None)
    summary = summarize("run-1", unnamed, checks)
    assert summary is not None
    assert summary.service == "search"
    assert summary.moved_traffic


# -- dora ------------------------------------------------------------------------------------


def _summary(
    started: datetime,
    outcome: str,
    minutes: float | None = None,
    *,
    moved: bool = True,
    restore_s: float | None = None,
    committed_h: float | None = None,
) -> DeploymentSummary:
    ended = started + timedelta(minutes=minutes) if minutes is not None else None
    detected = restored = None
    if restore_s is not None:
        detected = started + timedelta(minutes=1)
        restored = detected + timedelta(seconds=restore_s)
    return DeploymentSummary.model_validate(
        {
            "deployment_id": f"run-{started.isoformat()}",
            "service": "checkout",
            "stable_version": "v1",
            "canary_version": "v2",
            "started_at": started,
            "ended_at": ended,
            "outcome": outcome,
            "moved_traffic": moved,
            "detected_at": detected,
            "restored_at": restored,
            "committed_at": started - timedelta(hours=committed_h) if committed_h else None,
        }
    )


def test_dora_over_a_window() -> None:
    since, until = T0, T0 + timedelta(days=4)
    day = timedelta(days=1)
    summaries = [
        _summary(since, "promoted", 10, committed_h=1),  # lead 1 h 10 m
        _summary(since + day, "promoted", 20, committed_h=3),  # lead 3 h 20 m
        _summary(since + 2 * day, "promoted", 30),  # no commit time: no lead time
        _summary(since + 2 * day, "rolled_back", 40, restore_s=60),
        _summary(since + 3 * day, "rolled_back", 50, restore_s=300),
        _summary(since + 3 * day, "rolled_back", 5, restore_s=30),
        _summary(since + 3 * day, "not_started", 1, moved=False),
        _summary(until - timedelta(minutes=1), "running"),
        # Outside the window: before it, and at its (open) end.
        _summary(since - timedelta(seconds=1), "rolled_back", 10, restore_s=9999),
        _summary(until, "promoted", 10, committed_h=100),
    ]
    figures = dora(summaries, since, until, "checkout")
    assert figures.service == "checkout"
    assert (figures.deployments, figures.promoted, figures.rolled_back) == (6, 3, 3)
    assert (figures.not_started, figures.running) == (1, 1)
    assert figures.per_day == pytest.approx(6 / 4)
    assert figures.change_failure_rate == pytest.approx(0.5)
    assert figures.time_to_restore_median_s == pytest.approx(60)
    assert figures.time_to_restore_max_s == pytest.approx(300)
    # Durations 10, 20, 30, 40, 50, 5 minutes: the median is 25 minutes.
    assert figures.duration_median_s == pytest.approx(25 * 60)
    # Lead times 70 and 200 minutes: rolled-back and uncommitted ones have none.
    assert figures.lead_time_median_s == pytest.approx(135 * 60)


def test_dora_without_deployments_that_moved_traffic() -> None:
    summaries = [
        _summary(T0, "not_started", 1, moved=False),
        _summary(T0, "running"),
        _summary(T0, "promoted", 5, moved=False),  # e.g. promoted at 0%: not counted
    ]
    figures = dora(summaries, T0, T0 + timedelta(days=1))
    assert figures.service == "*"
    assert (figures.deployments, figures.not_started, figures.running) == (0, 1, 1)
    assert figures.per_day == 0
    assert figures.change_failure_rate is None
    assert figures.time_to_restore_median_s is None and figures.time_to_restore_max_s is None
    assert figures.duration_median_s is None and figures.lead_time_median_s is None


def test_a_short_window_counts_per_day_over_an_hour_at_least() -> None:
    summaries = [_summary(T0, "promoted", 1), _summary(T0 + timedelta(minutes=5), "promoted", 1)]
    figures = dora(summaries, T0, T0 + timedelta(minutes=10))
    assert figures.per_day == pytest.approx(2 * 24)


# -- trends ----------------------------------------------------------------------------------


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([0.0, 0.5, 1.0]) == SPARKS[0] + SPARKS[4] + SPARKS[7]
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"
    assert sparkline([3.0, 1.5]) == "█▅"


def test_sparkline_against_a_given_top() -> None:
    assert sparkline([1.0, 2.0, 4.0, 8.0], top=4.0) == "▃▅██"  # above the top: the top mark


def test_sparkline_gaps_and_zeros() -> None:
    assert sparkline([None, 1.0, None]) == " █ "
    assert sparkline([0.0, 0.0, 0.0]) == "▁▁▁"
    assert sparkline([None, None]) == "  "
    assert sparkline([]) == ""


def test_trend_lines_share_one_scale() -> None:
    trend = (
        TrendPoint(canary=0.01, stable=0.0),
        TrendPoint(canary=None, stable=0.02),
        TrendPoint(canary=0.04, stable=None),
    )
    lines = trend_lines(trend)
    assert lines == ("canary errors ▃ █ (0 to 4%)", "stable errors ▁▅ ")


def test_trend_lines_all_zero_and_empty() -> None:
    assert trend_lines(()) is None
    zero = (TrendPoint(canary=0.0, stable=0.0), TrendPoint(canary=None, stable=0.0))
    assert trend_lines(zero) == ("canary errors ▁  (all 0%)", "stable errors ▁▁")


def test_extend_trend_keeps_the_last_checks() -> None:
    trend: tuple[TrendPoint, ...] = ()
    for n in range(TREND_LENGTH + 5):
        canary = ArmNumbers(requests=100, errors=n)
        trend = extend_trend(trend, ArmNumbers(requests=0, errors=0), canary)
    assert len(trend) == TREND_LENGTH
    assert trend[-1] == TrendPoint(canary=(TREND_LENGTH + 4) / 100, stable=None)  # 0 requests
    assert trend[0].canary == pytest.approx(5 / 100)
    assert extend_trend(trend, None, None)[-1] == TrendPoint(canary=None, stable=None)


# -- an arm's numbers ------------------------------------------------------------------------


def _counters(requests: int, errors: int, *buckets: tuple[float, int]) -> ArmCounters:
    return ArmCounters(requests=requests, errors=errors, latency_buckets=buckets)


BEFORE = _counters(100, 1, (5, 40), (50, 90), (500, 100), (INF, 100))


def test_arm_numbers_between_two_cumulative_histograms() -> None:
    now = _counters(300, 5, (5, 140), (50, 190), (500, 298), (INF, 300))
    numbers = arm_numbers(arm_window(BEFORE, now))
    # This window: 200 requests; 100 at most 5 ms, 198 at most 500 ms, 2 slower.
    assert numbers == ArmNumbers(requests=200, errors=4, p50_ms=5.0, p99_ms=500.0)
    assert numbers.error_rate == pytest.approx(0.02)


def test_a_quantile_past_every_finite_bound_is_unknown() -> None:
    now = _counters(300, 5, (5, 100), (50, 190), (500, 250), (INF, 300))
    numbers = arm_numbers(arm_window(BEFORE, now))
    assert numbers is not None
    assert numbers.p50_ms == 50.0  # 100 of 200 needed: 60 within 5 ms, 100 within 50 ms
    assert numbers.p99_ms is None  # 150 of 200 within 500 ms; the rest beyond any bound


def test_arm_numbers_without_latency_or_data() -> None:
    assert arm_numbers(None) is None
    assert arm_window(None, BEFORE) is None
    untimed = arm_numbers(arm_window(_counters(10, 0), _counters(30, 3)))
    assert untimed == ArmNumbers(requests=20, errors=3, p50_ms=None, p99_ms=None)
    idle = arm_numbers(arm_window(BEFORE, BEFORE))
    assert idle is not None
    assert idle.requests == 0 and idle.error_rate is None
    assert idle.p50_ms is None and idle.p99_ms is None


def test_a_restarted_source_counts_from_zero() -> None:
    restarted = _counters(10, 1, (5, 4), (50, 9), (500, 10), (INF, 10))
    numbers = arm_numbers(arm_window(BEFORE, restarted))
    assert numbers == ArmNumbers(requests=10, errors=1, p50_ms=50.0, p99_ms=500.0)


def test_check_numbers_of_both_arms() -> None:
    now = _counters(300, 5, (5, 140), (50, 190), (500, 298), (INF, 300))
    previous = Sample(at=T0, stable=BEFORE, canary=None)
    current = Sample(at=_minutes(1), stable=now, canary=_counters(5, 0))
    stable, canary = check_numbers(previous, current)
    assert stable is not None and stable.requests == 200 and stable.p99_ms == 500.0
    assert canary is None  # no data before: no window


# -- store URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("/var/lib/sluicegate/evidence.db", "sqlite", "/var/lib/sluicegate/evidence.db"),
        ("evidence.db", "sqlite", "evidence.db"),
        ("sqlite:///var/lib/sluicegate/evidence.db", "sqlite", "/var/lib/sluicegate/evidence.db"),
        ("sqlite:data/evidence.db", "sqlite", "data/evidence.db"),
        ("sqlite://data/evidence.db", "sqlite", "data/evidence.db"),
        (
            "postgresql://sg:pw@db:5432/evidence",
            "postgresql",
            "postgresql://sg:pw@db:5432/evidence",
        ),
        ("postgres://db/evidence", "postgresql", "postgres://db/evidence"),
    ],
)
def test_store_url_forms(url: str, kind: str, target: str) -> None:
    assert StoreUrl.parse(url) == StoreUrl(kind, target)


def test_an_unknown_store_scheme_names_the_valid_forms() -> None:
    with pytest.raises(ValueError, match="'mysql'") as raised:
        StoreUrl.parse("mysql://db/evidence")
    message = str(raised.value)
    assert "SQLite file path" in message
    assert "sqlite:///absolute/path" in message
    assert "postgresql://" in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://sg:s3cret@db:5432/evidence", "postgresql://sg@db:5432/evidence"),
        ("postgresql://sg:s3cret@db/evidence?sslmode=require", "postgresql://sg@db/evidence"),
        ("postgresql://sg@db/evidence?password=s3cret", "postgresql://sg@db/evidence"),
        ("postgresql://sg:p@ss:s3cret@db/evidence", "postgresql://sg@db/evidence"),
        ("postgresql://db/evidence", "postgresql://db/evidence"),
        ("/var/lib/sluicegate/evidence.db", "SQLite /var/lib/sluicegate/evidence.db"),
    ],
)
def test_describe_hides_the_password(url: str, shown: str) -> None:
    described = StoreUrl.parse(url).describe()
    assert described.startswith(shown)
    assert "s3cret" not in described
