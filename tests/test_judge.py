"""The threshold judge, pure: cumulative samples and a policy in, a verdict out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from sluicegate.analysis import ComparisonResult, MetricResult, Verdict, judge, judge_once
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.analysis.threshold import Arm, quantile
from sluicegate.spec import AnalysisSpec, EnvoyStats, MetricCheck

INF = math.inf
T0 = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = AnalysisSpec(source=EnvoyStats(admin_url="http://127.0.0.1:9901"))


def arm(requests: int, errors: int = 0, slow: int = 0) -> ArmCounters:
    """Cumulative counters: `slow` requests took 100-500 ms, the rest at most 50 ms."""
    fast = requests - slow
    return ArmCounters(
        requests=requests,
        errors=errors,
        latency_buckets=((50.0, fast), (100.0, fast), (500.0, requests), (INF, requests)),
    )


def sample(canary: ArmCounters | None, seconds: int = 0) -> Sample:
    return Sample(at=T0 + timedelta(seconds=seconds), stable=arm(10_000), canary=canary)


def by_metric(verdict: Verdict) -> dict[str, MetricResult]:
    return {result.metric: result for result in verdict.results}


def test_default_policy_checks_the_default_metrics() -> None:
    assert [(m.metric, m.window) for m in POLICY.metrics] == [
        ("error_rate", "check"),
        ("latency_p99_ms", "check"),
        ("availability", "stage"),
    ]


def test_healthy_window() -> None:
    verdict = judge(sample(arm(0)), sample(arm(1000), 10), sample(arm(2000), 20), POLICY)

    assert verdict.status == "healthy"
    assert verdict.breaches == ()
    results = by_metric(verdict)
    assert results["error_rate"].value == 0
    assert results["error_rate"].requests == 1000
    assert results["latency_p99_ms"].value == pytest.approx(49.5)
    assert results["availability"].value == 1
    assert results["availability"].requests == 2000
    assert {r.status for r in verdict.results} == {"healthy"}


def test_error_rate_is_judged_over_the_check_window() -> None:
    # 10,000 clean requests this stage, then 5 errors in the last 100: 0.05% stage-wide,
    # 5% in the check window.
    verdict = judge(sample(arm(0)), sample(arm(10_000)), sample(arm(10_100, errors=5)), POLICY)

    results = by_metric(verdict)
    assert verdict.status == "breach"
    assert results["error_rate"].status == "breach"
    assert results["error_rate"].value == pytest.approx(0.05)
    assert results["error_rate"].requests == 100
    assert results["availability"].status == "healthy"
    assert [r.metric for r in verdict.breaches] == ["error_rate"]


def test_p99_breach_from_latency_buckets() -> None:
    # Last check: 100 requests, 5 of them in the 100-500 ms bucket. Rank 99 falls in that
    # bucket: 100 + 400 * (99 - 95) / 5 = 420 ms.
    verdict = judge(sample(arm(0)), sample(arm(1000)), sample(arm(1100, slow=5)), POLICY)

    results = by_metric(verdict)
    assert verdict.status == "breach"
    assert results["latency_p99_ms"].status == "breach"
    assert results["latency_p99_ms"].value == pytest.approx(420.0)
    assert results["error_rate"].status == "healthy"


def test_p99_within_bound_when_slow_requests_are_rare() -> None:
    # 1 slow of 1000: rank 990 is among the fast ones.
    verdict = judge(sample(arm(0)), sample(arm(1000)), sample(arm(2000, slow=1)), POLICY)
    assert by_metric(verdict)["latency_p99_ms"].status == "healthy"


def test_stage_availability_catches_a_small_persistent_regression() -> None:
    """0.5% errors every check: each check window is under error_rate's 1%, but the stage
    as a whole is at 99.5% availability, below 99.9%."""
    stage_start = sample(arm(0))
    previous = stage_start
    statuses = []
    for check in range(1, 11):
        current = sample(arm(1000 * check, errors=5 * check), 10 * check)
        verdict = judge(stage_start, previous, current, POLICY)
        results = by_metric(verdict)
        assert results["error_rate"].status == "healthy"
        assert results["error_rate"].value == pytest.approx(0.005)
        statuses.append(results["availability"].status)
        previous = current

    assert statuses == ["breach"] * 10
    assert results["availability"].value == pytest.approx(0.995)
    assert results["availability"].requests == 10_000
    assert verdict.status == "breach"


def test_too_few_requests_is_inconclusive_never_healthy() -> None:
    verdict = judge(sample(arm(0)), sample(arm(0)), sample(arm(19)), POLICY)

    assert verdict.status == "inconclusive"
    for result in verdict.results:
        assert result.status == "inconclusive"
        assert result.value is None
        assert result.requests == 19


def test_too_few_requests_hides_errors_too() -> None:
    verdict = judge(sample(arm(0)), sample(arm(0)), sample(arm(19, errors=19)), POLICY)
    assert verdict.status == "inconclusive"


def test_quiet_check_window_keeps_the_verdict_inconclusive() -> None:
    # The stage has plenty of clean traffic, but only 5 requests since the last check.
    verdict = judge(sample(arm(0)), sample(arm(5000)), sample(arm(5005)), POLICY)

    results = by_metric(verdict)
    assert results["availability"].status == "healthy"
    assert results["error_rate"].status == "inconclusive"
    assert verdict.status == "inconclusive"


def test_min_requests_is_the_policy_threshold() -> None:
    policy = POLICY.model_copy(update={"min_requests": 100})
    assert judge(sample(arm(0)), sample(arm(0)), sample(arm(99)), policy).status == ("inconclusive")
    assert judge(sample(arm(0)), sample(arm(0)), sample(arm(100)), policy).status == "healthy"


@pytest.mark.parametrize("missing", ["stage_start", "previous", "current"])
def test_no_canary_data_is_inconclusive(missing: str) -> None:
    samples = {
        "stage_start": sample(arm(0)),
        "previous": sample(arm(1000)),
        "current": sample(arm(2000)),
    }
    samples[missing] = sample(None)

    verdict = judge(samples["stage_start"], samples["previous"], samples["current"], POLICY)

    assert verdict.status == "inconclusive"
    if missing != "stage_start":
        assert by_metric(verdict)["error_rate"].value is None
        assert by_metric(verdict)["error_rate"].requests == 0


def test_counters_that_went_backwards_count_from_zero() -> None:
    # The source restarted: 100 requests and 5 errors since, below the earlier totals.
    restarted = arm(100, errors=5)
    verdict = judge(sample(arm(4000)), sample(arm(5000)), sample(restarted), POLICY)

    results = by_metric(verdict)
    assert results["error_rate"].requests == 100
    assert results["error_rate"].value == pytest.approx(0.05)
    assert results["availability"].requests == 100
    assert results["availability"].value == pytest.approx(0.95)
    assert verdict.status == "breach"


def test_since_subtracts_counters_and_buckets() -> None:
    later = arm(1100, errors=3, slow=5)
    assert later.since(arm(1000, errors=1)) == ArmCounters(
        requests=100,
        errors=2,
        latency_buckets=((50.0, 95), (100.0, 95), (500.0, 100), (INF, 100)),
    )


@pytest.mark.parametrize(
    "earlier",
    [
        arm(2000),  # requests went backwards
        arm(100, errors=10),  # errors went backwards
        arm(500),  # restarted and served more than before: only a bucket went backwards
    ],
    ids=["requests", "errors", "buckets"],
)
def test_since_a_larger_earlier_sample_is_everything(earlier: ArmCounters) -> None:
    current = arm(1000, errors=5, slow=900)
    assert current.since(earlier) == current


# --- judge_once --------------------------------------------------------------------------


def pair(stable: ArmCounters | None, canary: ArmCounters | None, seconds: int = 0) -> Sample:
    """A sample with both arms given."""
    return Sample(at=T0 + timedelta(seconds=seconds), stable=stable, canary=canary)


def test_judge_once_judges_check_and_stage_rules_over_the_one_window() -> None:
    # 1000 clean requests before the window, then 100 with 5 errors: over the window both
    # the error rate (check rule) and availability (stage rule) see only those 100.
    start = pair(arm(10_000), arm(1000))
    end = pair(arm(20_000), arm(1100, errors=5), 10)

    verdict = judge_once(start, end, POLICY)

    results = by_metric(verdict)
    assert verdict.status == "breach"
    assert results["error_rate"].value == pytest.approx(0.05)
    assert results["error_rate"].requests == 100
    assert results["error_rate"].status == "breach"
    assert results["availability"].value == pytest.approx(0.95)
    assert results["availability"].requests == 100
    assert results["availability"].window == "stage"
    assert results["availability"].status == "breach"
    assert results["latency_p99_ms"].status == "healthy"


def test_judge_once_healthy_canary() -> None:
    verdict = judge_once(pair(arm(0), arm(0)), pair(arm(500), arm(500), 10), POLICY)

    assert verdict.status == "healthy"
    assert [r.requests for r in verdict.results] == [500, 500, 500]


def test_judge_once_judges_stable_independently_of_the_canary() -> None:
    # The canary is clean; stable had 3 errors and 5 slow requests in its last 100.
    start = pair(arm(1000), arm(0))
    end = pair(arm(1100, errors=3, slow=5), arm(400), 10)

    stable = judge_once(start, end, POLICY, arm="stable")
    canary = judge_once(start, end, POLICY, arm="canary")

    stable_results = by_metric(stable)
    assert stable.status == "breach"
    assert stable_results["error_rate"].value == pytest.approx(0.03)
    assert stable_results["error_rate"].requests == 100
    assert stable_results["latency_p99_ms"].value == pytest.approx(420.0)
    assert stable_results["availability"].value == pytest.approx(0.97)
    assert canary.status == "healthy"
    assert {r.requests for r in canary.results} == {400}


def test_judge_once_stable_is_judged_without_any_canary() -> None:
    verdict = judge_once(pair(arm(0), None), pair(arm(1000), None, 10), POLICY, arm="stable")

    assert verdict.status == "healthy"
    assert {r.requests for r in verdict.results} == {1000}


@pytest.mark.parametrize("judged", ["stable", "canary"])
@pytest.mark.parametrize("missing", ["start", "end"])
def test_judge_once_arm_missing_in_either_sample_is_inconclusive(judged: Arm, missing: str) -> None:
    """The other arm's breaching traffic must not stand in for the missing one."""

    def build(which: str, seconds: int) -> Sample:
        counters = arm(0) if which == "start" else arm(1000, errors=500)
        arms: dict[str, ArmCounters | None] = {"stable": counters, "canary": counters}
        if which == missing:
            arms[judged] = None
        return pair(arms["stable"], arms["canary"], seconds)

    verdict = judge_once(build("start", 0), build("end", 10), POLICY, arm=judged)

    assert verdict.status == "inconclusive"
    for result in verdict.results:
        assert result.status == "inconclusive"
        assert result.value is None
        assert result.requests == 0


def test_judge_once_too_few_requests_is_inconclusive() -> None:
    policy = POLICY.model_copy(update={"min_requests": 100})
    verdict = judge_once(pair(arm(0), arm(0)), pair(arm(0), arm(99, errors=99), 10), policy)

    assert verdict.status == "inconclusive"
    assert {r.requests for r in verdict.results} == {99}


# --- quantile ----------------------------------------------------------------------------

BUCKETS = ((10.0, 5), (50.0, 15), (100.0, 20), (INF, 20))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.25, 10.0),  # rank 5: the top of the first bucket
        (0.1, 4.0),  # rank 2 of 5 in [0, 10]
        (0.5, 30.0),  # rank 10: 10 + 40 * (10 - 5) / (15 - 5)
        (0.99, 98.0),  # rank 19.8: 50 + 50 * (19.8 - 15) / (20 - 15)
        (1.0, 100.0),
    ],
)
def test_quantile_interpolates_inside_the_bucket(q: float, expected: float) -> None:
    assert quantile(BUCKETS, q) == pytest.approx(expected)


def test_quantile_in_the_infinite_bucket_is_the_largest_finite_bound() -> None:
    buckets = ((10.0, 5), (50.0, 10), (INF, 20))
    assert quantile(buckets, 0.9) == 50.0
    assert quantile(buckets, 0.99) == 50.0


@pytest.mark.parametrize("buckets", [(), ((10.0, 0), (INF, 0))], ids=["empty", "zero"])
def test_quantile_without_observations_is_none(buckets: tuple[tuple[float, int], ...]) -> None:
    assert quantile(buckets, 0.99) is None


# --- describe ----------------------------------------------------------------------------


def test_describe_names_the_failing_metric_value_and_bound() -> None:
    verdict = judge(sample(arm(0)), sample(arm(10_000)), sample(arm(10_100, errors=5)), POLICY)

    text = verdict.describe()

    assert "error_rate = 0.05" in text
    assert "<= 0.01" in text
    assert "100 canary requests this check" in text
    assert "latency_p99_ms" not in text  # only the breaches are shown


def test_describe_min_bound_and_no_data() -> None:
    verdict = judge(sample(arm(0)), sample(arm(0)), sample(arm(3)), POLICY)
    text = verdict.describe()
    assert "availability = no data (must be >= 0.999" in text


def test_min_bound_on_the_check_window() -> None:
    policy = POLICY.model_copy(update={"metrics": (MetricCheck(metric="availability", min=0.98),)})
    start, previous = sample(arm(0)), sample(arm(1000))
    assert judge(start, previous, sample(arm(1100, errors=2)), policy).status == "healthy"
    breach = judge(start, previous, sample(arm(1100, errors=3)), policy)
    assert breach.status == "breach"
    assert breach.results[0].value == pytest.approx(0.97)


def test_brief_shows_the_comparison_that_holds() -> None:
    def result(value: float | None, status: str) -> MetricResult:
        return MetricResult(
            metric="error_rate",
            window="check",
            value=value,
            bound=0.01,
            direction="max",
            requests=30,
            status=status,  # type: ignore[arg-type]
        )

    assert result(0.0, "healthy").brief() == "error_rate 0 <= 0.01"
    assert result(0.133, "breach").brief() == "error_rate 0.133 > 0.01"
    assert result(None, "inconclusive").brief() == "error_rate ? 0.01"


def comparison(status: str) -> ComparisonResult:
    return ComparisonResult(
        metric="errors",
        canary_events=0,
        canary_requests=200,
        stable_events=3,
        stable_requests=4000,
        rate_ratio=0.0,
        ratio_interval=None,
        e_value=0.5,
        bound=125.0,
        tolerance=1.0,
        status=status,  # type: ignore[arg-type]
    )


def test_a_conclusive_comparison_speaks_for_thresholds_short_of_requests() -> None:
    quiet = judge(sample(arm(0)), sample(arm(100)), sample(arm(105)), POLICY).results
    assert {r.status for r in quiet} == {"inconclusive", "healthy"}  # check vs stage rules
    assert Verdict.of(quiet, (comparison("healthy"),)).status == "healthy"
    assert Verdict.of(quiet, (comparison("inconclusive"),)).status == "inconclusive"
    assert Verdict.of(quiet, (comparison("breach"),)).status == "breach"
    assert Verdict.of(quiet).status == "inconclusive"  # thresholds alone still need data


def test_a_threshold_breach_with_data_stands_beside_a_healthy_comparison() -> None:
    failing = judge(sample(arm(0)), sample(arm(0)), sample(arm(100, errors=5)), POLICY).results
    assert Verdict.of(failing, (comparison("healthy"),)).status == "breach"
