"""The anytime-valid count comparison: its numbers against scipy, and its guarantees."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import binom, norm

from sluicegate.analysis.samples import ArmCounters, ArmWindow, Sample, arm_window
from sluicegate.analysis.sequential import (
    ALTERNATIVES,
    ComparisonResult,
    CountComparison,
    SequentialPolicy,
    bucket_at_or_above,
    compare,
    slow_requests,
    start_comparison,
)

Window = tuple[int, int, int, int]  # canary events, canary requests, stable events, stable requests


def observed(windows: list[Window], tolerance: float = 1.0) -> CountComparison:
    test = CountComparison(tolerance=tolerance)
    for window in windows:
        test = test.observe(*window)
    return test


def scipy_log_e(windows: list[Window], tolerance: float) -> float:
    """The same e-value from binomial likelihoods computed by scipy."""
    log_lrs = []
    for g in ALTERNATIVES:
        total = 0.0
        for ce, cn, se, sn in windows:
            if cn == 0 or sn == 0 or ce + se == 0:
                continue
            share = cn / (cn + sn)
            q0 = share * tolerance / (share * tolerance + 1 - share)
            q = share * tolerance * g / (share * tolerance * g + 1 - share)
            total += binom.logpmf(ce, ce + se, q) - binom.logpmf(ce, ce + se, q0)
        log_lrs.append(total)
    return float(logsumexp(log_lrs) - math.log(len(log_lrs)))


CASES: list[list[Window]] = [
    [(3, 50, 10, 950)],
    [(0, 50, 12, 950), (1, 45, 9, 955)],
    [(5, 20, 2, 980), (4, 200, 3, 800), (0, 0, 5, 1000)],  # shares vary; a window w/o canary
    [(30, 500, 100, 9500)] * 10,
]


@pytest.mark.parametrize("tolerance", [1.0, 1.2, 2.0])
@pytest.mark.parametrize("windows", CASES)
def test_the_e_value_matches_scipy_binomial_likelihoods(
    windows: list[Window], tolerance: float
) -> None:
    assert observed(windows, tolerance).log_e_value == pytest.approx(
        scipy_log_e(windows, tolerance), rel=1e-9, abs=1e-9
    )


def test_totals_are_kept_for_the_evidence() -> None:
    test = observed([(3, 50, 10, 950), (0, 0, 4, 100)])
    assert (test.canary_events, test.canary_requests) == (3, 50)
    assert (test.stable_events, test.stable_requests) == (14, 1050)


def test_a_doubled_error_rate_is_rejected_and_an_equal_one_is_not() -> None:
    doubled = observed([(2, 100, 19, 1900)] * 60)  # 2% vs 1% for 60 windows
    equal = observed([(1, 100, 19, 1900)] * 60)
    assert doubled.rejects(0.01)
    assert not equal.rejects(0.01)
    assert equal.log_e_value < 0  # evidence for the null drives E below 1


def test_tolerance_allows_the_degradation_it_names() -> None:
    windows = [(12, 1000, 200, 20000)] * 50  # canary 1.2%, stable 1%: a ratio of 1.2
    assert observed(windows, tolerance=1.0).rejects(0.01)
    assert not observed(windows, tolerance=1.2).rejects(0.01)


def test_windows_without_events_or_traffic_add_nothing() -> None:
    base = observed([(3, 50, 10, 950)])
    more = base.observe(0, 50, 0, 950).observe(2, 0, 5, 950).observe(1, 10, 0, 0)
    assert more.log_likelihood_ratios == base.log_likelihood_ratios


def test_rate_ratio_and_its_interval() -> None:
    test = observed([(20, 1000, 100, 10000)])
    assert test.rate_ratio() == pytest.approx(2.0)
    low, high = test.ratio_interval(0.05)
    a, b = 20.5, 100.5
    spread = norm.ppf(0.975) * math.sqrt(1 / a + 1 / b)
    centre = math.log(a / 1000) - math.log(b / 10000)
    assert (low, high) == pytest.approx((math.exp(centre - spread), math.exp(centre + spread)))
    assert low < 2.0 < high


def test_zero_errors_on_either_side_are_fine() -> None:
    none_anywhere = observed([(0, 100, 0, 1900)])
    assert none_anywhere.rate_ratio() is None
    assert none_anywhere.ratio_interval(0.01) is not None
    only_canary = observed([(5, 100, 0, 1900)])
    assert only_canary.rate_ratio() == math.inf
    assert observed([]).rate_ratio() is None and observed([]).ratio_interval(0.01) is None


counts = st.integers(min_value=0, max_value=10**7)


@given(st.lists(st.tuples(counts, counts, counts, counts), max_size=30), st.floats(1.0, 10.0))
@settings(max_examples=300, deadline=None)
def test_any_counts_give_a_finite_statistic(windows: list[Window], tolerance: float) -> None:
    # Counts straight from a metric source may be inconsistent (more errors than requests
    # after a restart): the statistic must still be a number, never an exception.
    test = observed(windows, tolerance)
    assert math.isfinite(test.log_e_value)
    assert test.rejects(0.01) in (True, False)
    interval = test.ratio_interval(0.01)
    assert interval is None or interval[0] <= interval[1]


def test_false_alarms_stay_under_alpha_in_a_quick_a_a_simulation() -> None:
    """A/A, 400 runs of 720 looks each at alpha 0.01: a generous bound of 3%."""
    rng = np.random.default_rng(7)
    alarms = 0
    for _ in range(400):
        test = CountComparison(tolerance=1.0)
        for _ in range(720):
            canary, stable = rng.poisson(50), rng.poisson(950)
            test = test.observe(
                int(rng.binomial(canary, 0.01)), canary, int(rng.binomial(stable, 0.01)), stable
            )
            if test.rejects(0.01):
                alarms += 1
                break
    assert alarms / 400 <= 0.03  # alpha plus four standard errors of the estimate


# -- the judge built on it: windows from samples, slow requests from histograms ------------

BUCKETS = (10.0, 50.0, 100.0, math.inf)


def arm(requests: int, errors: int, slow: int) -> ArmCounters:
    """Cumulative counters with `slow` requests above 50 ms (half of the rest at 10 ms)."""
    fast = requests - slow
    return ArmCounters(
        requests=requests,
        errors=errors,
        latency_buckets=((10.0, fast // 2), (50.0, fast), (100.0, requests), (math.inf, requests)),
    )


def sample(second: int, canary: ArmCounters | None, stable: ArmCounters | None) -> Sample:
    at = datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(seconds=second)
    return Sample(at=at, canary=canary, stable=stable)


def windows(previous: Sample, current: Sample) -> tuple[ArmWindow | None, ArmWindow | None]:
    """Each arm's window from `previous` to `current`, as the judge gives them to compare."""
    return arm_window(previous.canary, current.canary), arm_window(previous.stable, current.stable)


def test_slow_bound_comes_from_stable_before_the_stage() -> None:
    start = sample(0, None, arm(1000, 10, 100))  # 90% at or below 50 ms
    state = start_comparison(start, SequentialPolicy(slow_quantile=0.9))
    assert state.slow_above_ms == 50.0
    assert start_comparison(sample(0, None, None), SequentialPolicy()).slow_above_ms is None


def test_bucket_and_slow_counts() -> None:
    buckets = ((10.0, 40), (50.0, 90), (100.0, 100), (math.inf, 100))
    assert bucket_at_or_above(buckets, 0.5) == 50.0
    assert bucket_at_or_above(buckets, 0.99) == 100.0
    assert bucket_at_or_above(((math.inf, 5),), 0.5) is None
    assert bucket_at_or_above((), 0.5) is None
    assert slow_requests(arm(1000, 0, 100), 50.0) == 100
    assert slow_requests(arm(1000, 0, 100), 10.0) == 550


def test_compare_adds_each_window_and_catches_a_slower_canary() -> None:
    policy = SequentialPolicy()
    previous = sample(0, arm(0, 0, 0), arm(0, 0, 0))
    state = start_comparison(sample(0, None, arm(10000, 100, 1000)), policy)
    results: tuple[ComparisonResult, ...] = ()
    for second in range(1, 61):  # canary 30% slow vs stable 10%, same errors
        current = sample(second, arm(50 * second, second // 2, 15 * second),
                         arm(950 * second, 9 * second, 95 * second))  # fmt: skip
        state, results = compare(state, *windows(previous, current), policy, min_requests=20)
        previous = current
    errors, slow = results
    assert (errors.metric, slow.metric) == ("errors", "slow_requests")
    assert slow.status == "breach" and slow.slow_above_ms == 50.0
    assert errors.status == "healthy"
    assert (slow.canary_events, slow.canary_requests) == (900, 3000)
    assert slow.bound == pytest.approx(1 / (policy.alpha * 0.2))
    assert "slow_requests (slower than 50 ms)" in slow.describe()


def test_compare_without_data_is_inconclusive_never_healthy() -> None:
    policy = SequentialPolicy()
    state = start_comparison(sample(0, None, None), policy)
    state, results = compare(state, None, None, policy, 20)
    assert [r.status for r in results] == ["inconclusive"]
    assert state.errors.canary_requests == 0


def test_a_metrics_outage_is_inconclusive_even_after_enough_healthy_data() -> None:
    policy = SequentialPolicy()
    state = start_comparison(sample(0, None, arm(1000, 0, 100)), policy)
    previous = sample(0, arm(0, 0, 0), arm(0, 0, 0))
    healthy = sample(10, arm(500, 2, 50), arm(9500, 40, 950))
    state, results = compare(state, *windows(previous, healthy), policy, min_requests=20)
    assert {r.status for r in results} == {"healthy"}
    state, results = compare(state, None, None, policy, min_requests=20)
    assert {r.status for r in results} == {"inconclusive"}
    assert state.errors.canary_requests == 500  # what was gathered is kept for later
