"""The judge, pure: cumulative samples and a policy in, a verdict with its evidence out.

Properties rather than numbers: a glaring failure breaches at its first check, a healthy
canary never does over a fixed set of seeds, a failure after long health is still caught
at once, a stable that already breaches a limit does not fail the canary for it, and a
stable that starts breaching while the canary has traffic rolls back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import binom

from frontends.client.operations import json_data
from sluicegate.analysis import (
    ArmCounters,
    Baseline,
    JudgeState,
    Sample,
    Verdict,
    judge_check,
    judge_once,
    measure_baseline,
    start_stage,
)
from sluicegate.analysis.limits import LimitTest, alternatives, upper_bound
from sluicegate.contracts import CheckReport
from sluicegate.spec import AnalysisSpec, EnvoyStats, MetricCheck

INF = math.inf
T0 = datetime(2024, 1, 1, tzinfo=UTC)
BOUNDS = (10.0, 50.0, 100.0, 250.0, 500.0, INF)
POLICY = AnalysisSpec(source=EnvoyStats(admin_url="http://127.0.0.1:9901"))


@dataclass
class Arm:
    """An arm's cumulative counters, grown one check at a time."""

    requests: int = 0
    errors: int = 0
    slow: int = 0  # requests slower than 250 ms (the rest take 40 ms)
    business: dict[str, float] = field(default_factory=dict)

    def add(self, requests: int, errors: int = 0, slow: int = 0) -> None:
        self.requests += requests
        self.errors += errors
        self.slow += slow

    def counters(self) -> ArmCounters:
        fast = self.requests - self.slow
        counts = (0, fast, fast, fast, self.requests, self.requests)
        return ArmCounters(
            requests=self.requests,
            errors=self.errors,
            latency_buckets=tuple(zip(BOUNDS, counts, strict=True)),
        )


@dataclass
class Stream:
    """A stage being judged check by check, as the watcher does."""

    policy: AnalysisSpec = POLICY
    baseline: Baseline | None = None
    canary: Arm = field(default_factory=Arm)
    stable: Arm = field(default_factory=Arm)
    second: int = 0
    state: JudgeState | None = None
    previous: Sample | None = None

    def sample(self, data: bool = True) -> Sample:
        at = T0 + timedelta(seconds=self.second)
        if not data:
            return Sample(at=at, stable=None, canary=None, notes=("no data",))
        return Sample(at=at, stable=self.stable.counters(), canary=self.canary.counters())

    def check(
        self,
        canary: tuple[int, ...] = (20,),
        stable: tuple[int, ...] = (380,),
        data: bool = True,
    ) -> Verdict:
        """One check: (requests, errors, slow) added to each arm, then judged."""
        if self.state is None:
            self.previous = self.sample()
            self.state = start_stage(self.previous, self.policy, self.baseline)
        self.canary.add(*canary)
        self.stable.add(*stable)
        self.second += 10
        current = self.sample(data)
        assert self.previous is not None
        self.state, verdict = judge_check(self.state, self.previous, current, self.policy)
        if data:
            self.previous = current
        return verdict


def by_metric(verdict: Verdict, kind: str = "limit") -> dict[str, object]:
    return {r.metric: r for r in verdict.results if r.kind == kind}


# --- glaring failures breach at once -----------------------------------------------------


def test_all_of_20_requests_failing_breaches_at_the_first_check() -> None:
    verdict = Stream().check(canary=(20, 20))
    assert verdict.status == "breach" and verdict.rollback
    breached = {r.metric for r in verdict.breaches}
    assert {"error_rate", "availability"} <= breached
    expected = "error_rate: 20 of 20 canary requests failed in the last check (100%"
    assert expected in verdict.describe()


def test_every_request_250_ms_slower_breaches_at_the_first_check() -> None:
    verdict = Stream().check(canary=(20, 0, 20))
    assert verdict.rollback
    p99 = by_metric(verdict)["latency_p99_ms"]
    assert p99.status == "breach"  # type: ignore[attr-defined]
    assert p99.slower_than_ms == 250.0  # type: ignore[attr-defined]
    assert "slower than 250 ms" in verdict.describe()


def test_a_failure_after_an_hour_of_health_is_caught_within_two_checks() -> None:
    stream = Stream(policy=POLICY.model_copy(update={"interval": timedelta(seconds=1)}))
    for _ in range(3600):
        assert not stream.check(canary=(20, 0), stable=(380, 1)).rollback
    caught = [stream.check(canary=(20, 20)).rollback for _ in range(2)]
    assert any(caught)


def test_the_stage_window_adds_up_a_small_persistent_excess() -> None:
    # availability >= 99.9%: 0.5% of requests fail, far too few per check to see at once.
    stream = Stream()
    checks = 0
    while not stream.check(canary=(200, 1)).rollback:
        checks += 1
        assert checks < 200
    assert checks > 1
    assert by_metric(stream.check(canary=(200, 1)))["availability"].checks is None  # type: ignore[attr-defined]


# --- healthy canaries stay ----------------------------------------------------------------


def test_a_canary_identical_to_a_stable_at_the_limit_is_not_rolled_back() -> None:
    """A/A at error_rate = its 1% limit and availability far below 99.9%, with the baseline
    telling the judge so: 40 seeded stages of 360 checks never roll back."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        baseline_stable = Arm()
        first = Sample(at=T0, stable=baseline_stable.counters(), canary=None)
        baseline_stable.add(5700, int(rng.binomial(5700, 0.01)))
        last = Sample(at=T0 + timedelta(seconds=60), stable=baseline_stable.counters(), canary=None)
        stream = Stream(baseline=measure_baseline(first, last, POLICY))
        for _ in range(360):
            canary, stable = int(rng.poisson(50)), int(rng.poisson(950))
            verdict = stream.check(
                canary=(canary, int(rng.binomial(canary, 0.01))),
                stable=(stable, int(rng.binomial(stable, 0.01))),
            )
            assert not verdict.rollback, verdict.describe()


def test_a_healthy_check_says_so_with_its_counts() -> None:
    verdict = Stream().check(canary=(412, 0), stable=(7790, 3))
    assert verdict.status == "healthy" and not verdict.rollback
    assert "errors 0 of 412 vs stable 3 of 7,790" in verdict.brief()
    assert "error_rate 0 of 412 ≤ 1%" in verdict.brief()


# --- without data, and with too little ----------------------------------------------------


def test_no_data_is_inconclusive_and_lapses_past_the_tolerance() -> None:
    stream = Stream()
    stream.check()
    verdicts = [stream.check(data=False) for _ in range(POLICY.inconclusive_checks_tolerated + 1)]
    assert {v.status for v in verdicts} == {"inconclusive"}
    assert [v.lapsed for v in verdicts][-2:] == [False, True]
    assert verdicts[-1].rollback  # on_inconclusive: rollback


def test_a_lapse_pauses_instead_when_the_spec_says_so() -> None:
    stream = Stream(policy=POLICY.model_copy(update={"on_inconclusive": "pause"}))
    for _ in range(POLICY.inconclusive_checks_tolerated + 1):
        verdict = stream.check(data=False)
    assert verdict.lapsed and not verdict.rollback
    assert stream.state is not None
    stream.state = stream.state.after_pause()
    assert not stream.check(data=False).lapsed  # a new lapse needs the full count again


def test_a_quiet_canary_is_inconclusive_until_enough_requests_but_never_lapses() -> None:
    stream = Stream()
    verdicts = [stream.check(canary=(1,), stable=(99,)) for _ in range(19)]
    assert {v.status for v in verdicts} == {"inconclusive"}
    assert not any(v.lapsed or v.rollback for v in verdicts)
    assert stream.check(canary=(1,), stable=(99,)).status == "healthy"  # the 20th request
    assert stream.check(canary=(0,), stable=(99,)).status == "healthy"  # data, no requests


# --- stable's baseline --------------------------------------------------------------------


def baseline_of(requests: int, errors: int, policy: AnalysisSpec = POLICY) -> Baseline:
    stable = Arm()
    first = Sample(at=T0, stable=stable.counters(), canary=None)
    stable.add(requests, errors)
    return measure_baseline(first, Sample(at=T0, stable=stable.counters(), canary=None), policy)


def test_a_limit_stable_already_breaches_is_not_held_against_the_canary() -> None:
    baseline = baseline_of(6000, 18)  # 0.3% errors: availability 99.7% < 99.9%
    availability = baseline.rules[2]
    assert availability.breaches and not baseline.rules[0].breaches
    assert "stable already breaches availability ≥ 99.9% (99.7% measured)" in baseline.lines(POLICY)
    stream = Stream(baseline=baseline)
    for _ in range(200):  # the canary as bad as stable was, for a long stage
        verdict = stream.check(canary=(1000, 3), stable=(19000, 57))
        assert not verdict.rollback, verdict.describe()
    assert by_metric(verdict)["availability"].note  # type: ignore[attr-defined]


def test_a_canary_worse_than_a_breaching_stable_is_still_rolled_back() -> None:
    stream = Stream(baseline=baseline_of(6000, 18))
    assert any(stream.check(canary=(1000, 20), stable=(19000, 57)).rollback for _ in range(10))


def test_stable_starting_to_breach_while_the_canary_has_traffic_rolls_back() -> None:
    stream = Stream(baseline=baseline_of(6000, 0))
    verdicts = [stream.check(canary=(50, 0), stable=(950, 48)) for _ in range(3)]
    assert any(v.rollback for v in verdicts)
    guard = next(r for v in verdicts for r in v.results if r.kind == "stable_limit")
    assert guard.status == "breach"
    assert "stable began breaching while the canary had traffic" in guard.describe()


def test_without_a_baseline_limits_are_held_as_written_and_stable_is_not_guarded() -> None:
    stream = Stream()
    verdict = stream.check(canary=(50, 0), stable=(950, 48))
    assert not any(r.kind == "stable_limit" for r in verdict.results)
    assert by_metric(verdict)["availability"].share_bound == pytest.approx(0.001)  # type: ignore[attr-defined]


def test_baseline_without_stable_data_relaxes_nothing() -> None:
    empty = measure_baseline(
        Sample(at=T0, stable=None, canary=None), Sample(at=T0, stable=None, canary=None), POLICY
    )
    assert empty.requests == 0 and not any(rule.breaches for rule in empty.rules)
    assert empty.lines(POLICY)[0].startswith("stable served no requests")


# --- tolerances -----------------------------------------------------------------------------


def test_failed_checks_tolerated_delays_the_rollback_by_that_many_checks() -> None:
    policy = POLICY.model_copy(update={"failed_checks_tolerated": 1, "mode": "thresholds"})
    stream = Stream(policy=policy)
    first, second = stream.check(canary=(20, 20)), stream.check(canary=(20, 20))
    assert first.status == "breach" and not first.rollback
    assert second.rollback


# --- the one-sample test and the baseline bound -----------------------------------------


@pytest.mark.parametrize("bound", [0.001, 0.01, 0.2])
def test_stage_evidence_is_the_mixture_of_binomial_likelihood_ratios(bound: float) -> None:
    test = LimitTest.start(bound, "stage")
    windows = [(3, 100), (0, 50), (10, 400)]
    for events, requests in windows:
        test = test.observe(events, requests)
    events, requests = sum(w[0] for w in windows), sum(w[1] for w in windows)
    ratios = [
        binom.logpmf(events, requests, p) - binom.logpmf(events, requests, bound)
        for p in alternatives(bound)
    ]
    weights = [0.5 / (len(ratios) - 1)] * (len(ratios) - 1) + [0.5]  # half for the top share
    expected = math.log(sum(w * math.exp(r) for w, r in zip(weights, ratios, strict=True)))
    assert test.log_evidence() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("window", ["stage", "check"])
def test_two_bad_requests_of_two_prove_a_dead_canary_at_a_stage_start(window: str) -> None:
    test = LimitTest.start(0.01, window).observe(1, 1)
    assert not test.rejects(0.001)
    assert test.observe(1, 1).rejects(0.001)


def test_alternatives_reach_a_dead_canary_and_stay_above_the_bound() -> None:
    for bound in (0.0, 0.001, 0.01, 0.5, 0.99, 1.0):
        shares = alternatives(bound)
        assert all(bound < p < 1 for p in shares) or bound == 1.0
        assert max(shares) >= 0.99


def test_the_check_window_keeps_the_most_damning_stretch() -> None:
    test = LimitTest.start(0.01, "check")
    for _ in range(100):
        test = test.observe(0, 100)
    test = test.observe(30, 100).observe(30, 100)
    assert test.rejects(0.001)
    assert test.counted() == (60, 200, 2)


def test_the_upper_bound_covers_the_true_share() -> None:
    rng = np.random.default_rng(11)
    misses = sum(
        upper_bound(int(rng.binomial(3000, 0.003)), 3000, 0.01) < 0.003 for _ in range(2000)
    )
    assert misses / 2000 <= 0.01
    assert upper_bound(0, 0, 0.01) == 1.0
    assert 0.003 < upper_bound(9, 3000, 0.01) < 0.01


# --- rules --------------------------------------------------------------------------------


def test_a_latency_limit_above_every_bucket_cannot_be_counted() -> None:
    policy = POLICY.model_copy(
        update={"metrics": (MetricCheck(metric="latency_p99_ms", max=1000),)}
    )
    verdict = Stream(policy=policy).check()
    p99 = by_metric(verdict)["latency_p99_ms"]
    assert p99.status == "inconclusive"  # type: ignore[attr-defined]


def test_counters_that_went_backwards_count_from_zero() -> None:
    stream = Stream()
    stream.check(canary=(4000,))
    stream.canary = Arm(requests=100, errors=100)  # the source restarted: 100 failures since
    verdict = stream.check(canary=(0,))
    assert by_metric(verdict)["error_rate"].events == 100  # type: ignore[attr-defined]
    assert verdict.rollback


def test_since_subtracts_counters_and_buckets() -> None:
    later = Arm(1100, 3, 5).counters()
    earlier = Arm(1000, 1).counters()
    window = later.since(earlier)
    assert (window.requests, window.errors) == (100, 2)
    assert window.latency_buckets[-1] == (INF, 100)


# --- judge_once (sluice health, preflight) ------------------------------------------------


def test_judge_once_judges_one_arm_over_one_window() -> None:
    start = Sample(at=T0, stable=Arm(0).counters(), canary=Arm(0).counters())
    end = Sample(
        at=T0 + timedelta(seconds=10),
        stable=Arm(1000, 30).counters(),
        canary=Arm(20, 20).counters(),
    )
    assert judge_once(start, end, POLICY, "canary").status == "breach"
    stable = judge_once(start, end, POLICY, "stable")
    assert stable.status == "breach"
    assert all(r.kind == "stable_limit" for r in stable.results)
    missing = Sample(at=end.at, stable=None, canary=None)
    assert judge_once(start, missing, POLICY, "canary").status == "inconclusive"


def test_a_stable_that_breached_before_is_still_held_to_what_it_was() -> None:
    stream = Stream(baseline=baseline_of(6000, 18))  # 0.3% errors: availability breached
    verdicts = [stream.check(canary=(50, 0), stable=(950, 48)) for _ in range(3)]  # now 5%
    guards = [r for v in verdicts for r in v.breaches if getattr(r, "kind", "") == "stable_limit"]
    assert any(v.rollback for v in verdicts)
    assert {"availability", "error_rate"} <= {r.metric for r in guards}


def test_a_check_report_with_the_judges_state_is_strict_json() -> None:
    stream = Stream()
    verdict = stream.check(canary=(0,))  # a fresh check-window test: its evidence is -inf
    report = CheckReport(
        at=T0, number=1, verdict=verdict, judge=stream.state, sample=stream.sample()
    )
    text = json.dumps(json_data(report), allow_nan=False)
    assert CheckReport.model_validate_json(text) == report
