"""Pure canary analysis: measurements and a policy in, a verdict with its evidence out."""

from sluicegate.analysis.sequential import SequentialState, compare, start_comparison
from sluicegate.analysis.threshold import judge, judge_once
from sluicegate.analysis.verdict import ComparisonResult, MetricResult, Verdict

__all__ = [
    "ComparisonResult",
    "MetricResult",
    "SequentialState",
    "Verdict",
    "compare",
    "judge",
    "judge_once",
    "start_comparison",
]
