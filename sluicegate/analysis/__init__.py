"""Pure canary analysis: measurements and a policy in, a verdict with its evidence out.

The public contract of the judge (the watcher and every benchmark call exactly these):

    baseline = measure_baseline(first, last, policy)
    state = start_stage(first, policy, baseline)
    state, verdict = judge_check(state, previous, current, policy)
"""

from sluicegate.analysis.baseline import Baseline, RuleBaseline, measure_baseline
from sluicegate.analysis.judge import JudgeState, judge_check, judge_once, start_stage
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.analysis.sequential import SequentialState
from sluicegate.analysis.verdict import ComparisonResult, MetricResult, Verdict

__all__ = [
    "ArmCounters",
    "Baseline",
    "ComparisonResult",
    "JudgeState",
    "MetricResult",
    "RuleBaseline",
    "Sample",
    "SequentialState",
    "Verdict",
    "judge_check",
    "judge_once",
    "measure_baseline",
    "start_stage",
]
