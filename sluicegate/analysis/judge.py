"""The one judging API: the watcher and every benchmark call these, and nothing else.

    baseline = measure_baseline(first, last, policy)          # stable before any traffic
    state = start_stage(first, policy, baseline)               # a stage's first sample
    state, verdict = judge_check(state, previous, current, policy)

Per check: each absolute limit on the canary's share of bad requests (limits.py), held to
stable's baseline where stable already breaches it (baseline.py); the same limits on
stable while the canary has traffic; the canary-versus-stable comparison (sequential.py);
business metrics against stable's. The verdict says whether to roll back now, with the
spec's tolerances applied, and whether data has been missing for longer than tolerated.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sluicegate.analysis.baseline import Baseline
from sluicegate.analysis.business import business_result
from sluicegate.analysis.limits import LimitTest
from sluicegate.analysis.rules import bad_requests, share_bound
from sluicegate.analysis.samples import ArmWindow, Sample, arm_window
from sluicegate.analysis.sequential import SequentialState, compare, start_comparison
from sluicegate.analysis.verdict import ComparisonResult, MetricResult, Status, Verdict
from sluicegate.spec import AnalysisSpec, MetricCheck

Arm = Literal["stable", "canary"]


class JudgeState(BaseModel):
    """Everything the judge carries from one check to the next (and across retries)."""

    # A check-window test starts at -inf (no stretch yet): JSON carries it as a string.
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")

    limits: tuple[LimitTest, ...] = ()  # one per rule, on the canary
    guards: tuple[LimitTest | None, ...] = ()  # one per rule, on stable (None: not held)
    notes: tuple[str | None, ...] = ()  # one per rule: why the canary's bound moved
    comparison: SequentialState | None = None
    baseline: Baseline | None = None
    checks: int = 0
    failed_checks: int = 0
    no_data_in_a_row: int = 0

    def after_pause(self) -> JudgeState:
        """A person was asked: a new lapse needs the full count of checks again."""
        return self.model_copy(update={"no_data_in_a_row": 0})


def start_stage(
    first: Sample, policy: AnalysisSpec, baseline: Baseline | None = None
) -> JudgeState:
    """The judge's state at a stage's first sample, before its traffic is judged."""
    limits: list[LimitTest] = []
    guards: list[LimitTest | None] = []
    notes: list[str | None] = []
    for index, rule in enumerate(policy.metrics):
        rule_baseline = baseline.for_rule(index) if baseline is not None else None
        bound = share_bound(rule)
        note = None
        if rule_baseline is not None and rule_baseline.breaches:
            bound = rule_baseline.canary_bound
            note = f"stable already breached it before the deployment: held to {bound:.3%}"
        limits.append(LimitTest.start(bound, rule.window))
        notes.append(note)
        guard = None
        if rule_baseline is not None and rule_baseline.requests > 0:
            guard = LimitTest.start(rule_baseline.stable_bound, rule.window)
        guards.append(guard)
    return JudgeState(
        limits=tuple(limits),
        guards=tuple(guards),
        notes=tuple(notes),
        comparison=start_comparison(first, policy.sequential),
        baseline=baseline,
    )


def judge_check(
    state: JudgeState, previous: Sample, current: Sample, policy: AnalysisSpec
) -> tuple[JudgeState, Verdict]:
    """Judge the window from `previous` to `current`; the new state and the verdict."""
    canary, stable = _window(previous, current, "canary"), _window(previous, current, "stable")
    has_data = canary is not None and stable is not None and canary.requests + stable.requests > 0
    results: list[MetricResult] = []
    limits, guards = list(state.limits), list(state.guards)
    comparisons: tuple[ComparisonResult, ...] = ()
    comparison = state.comparison
    if policy.mode != "sequential":
        for index, rule in enumerate(policy.metrics):
            limits[index], result = _limit(
                rule, limits[index], canary, policy, "limit", state.notes[index]
            )
            results.append(result)
            if (guard := guards[index]) is not None:
                guard, counted, slower = _observe(rule, guard, stable)
                guards[index] = guard
                if guard.rejects(policy.limits_alpha):  # shown only when it breaches
                    results.append(
                        _limit_result(rule, guard, counted, slower, policy, "stable_limit")
                    )
        results += [business_result(rule, current) for rule in policy.business]
    if policy.mode != "thresholds" and comparison is not None:
        comparison, comparisons = compare(
            comparison, canary, stable, policy.sequential, policy.min_requests
        )
    verdict = Verdict.of(tuple(results), comparisons)
    failed = state.failed_checks + any(r.status == "breach" for r in results)
    no_data = 0 if has_data else state.no_data_in_a_row + 1
    lapsed = no_data > policy.inconclusive_checks_tolerated
    # The comparison bounds its false alarms over the stage: its first breach rolls back.
    rollback = (
        failed > policy.failed_checks_tolerated
        or any(c.status == "breach" for c in comparisons)
        or (lapsed and policy.on_inconclusive == "rollback")
    )
    updated = state.model_copy(
        update={
            "limits": tuple(limits),
            "guards": tuple(guards),
            "comparison": comparison,
            "checks": state.checks + 1,
            "failed_checks": failed,
            "no_data_in_a_row": no_data,
        }
    )
    verdict = verdict.model_copy(
        update={
            "rollback": rollback,
            "lapsed": lapsed,
            "canary_requests": canary.requests if canary is not None else 0,
        }
    )
    return updated, verdict


def _observe(
    rule: MetricCheck, test: LimitTest, arm: ArmWindow | None
) -> tuple[LimitTest, bool, float | None]:
    """Add one arm's window to one limit's test: the test, whether the window could be
    counted, and the latency bound counted above."""
    counted = bad_requests(rule, arm) if arm is not None else None
    if counted is None:
        return test, False, None
    bad, requests, slower = counted
    return test.observe(bad, requests), True, slower


def _limit(
    rule: MetricCheck,
    test: LimitTest,
    arm: ArmWindow | None,
    policy: AnalysisSpec,
    kind: Literal["limit", "stable_limit"],
    note: str | None = None,
) -> tuple[LimitTest, MetricResult]:
    """Add one arm's window to one limit's test; the test and its evidence."""
    test, counted, slower = _observe(rule, test, arm)
    return test, _limit_result(rule, test, counted, slower, policy, kind, note)


def _limit_result(
    rule: MetricCheck,
    test: LimitTest,
    counted: bool,
    slower_than_ms: float | None,
    policy: AnalysisSpec,
    kind: Literal["limit", "stable_limit"],
    note: str | None = None,
) -> MetricResult:
    evidence, threshold = test.log_evidence(), test.log_threshold(policy.limits_alpha)
    if evidence >= threshold:
        status: Status = "breach"
    elif not counted or test.requests < policy.min_requests:
        status = "inconclusive"  # no data this check, or not enough requests yet
    else:
        status = "healthy"
    events, requests, checks = test.counted()
    bound = rule.max if rule.max is not None else rule.min
    assert bound is not None  # a MetricCheck has exactly one of them (its validator)
    return MetricResult(
        metric=rule.metric,
        window=rule.window,
        value=events / requests if requests else None,
        bound=bound,
        direction="max" if rule.max is not None else "min",
        requests=requests,
        status=status,
        kind=kind,
        events=events if counted or test.requests else None,
        share_bound=test.bound,
        checks=checks,
        slower_than_ms=slower_than_ms,
        e_value=_capped_exp(evidence),
        evidence_bound=_capped_exp(threshold),
        note=note,
    )


def _capped_exp(value: float) -> float:
    return math.exp(min(value, 700.0))


def _window(previous: Sample, current: Sample, arm: Arm) -> ArmWindow | None:
    return arm_window(getattr(previous, arm), getattr(current, arm))


def judge_once(start: Sample, end: Sample, policy: AnalysisSpec, arm: Arm = "canary") -> Verdict:
    """Every limit on one arm over one window, on evidence: `sluice health` and preflight."""
    window = _window(start, end, arm)
    kind: Literal["limit", "stable_limit"] = "limit" if arm == "canary" else "stable_limit"
    results = tuple(
        _limit(rule, LimitTest.start(share_bound(rule), "stage"), window, policy, kind)[1]
        for rule in policy.metrics
    )
    return Verdict.of(results).model_copy(
        update={"canary_requests": window.requests if window and arm == "canary" else None}
    )
