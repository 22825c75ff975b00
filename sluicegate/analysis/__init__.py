"""Pure canary analysis: measurements and a policy in, a verdict with its evidence out."""

from sluicegate.analysis.threshold import judge, judge_once
from sluicegate.analysis.verdict import MetricResult, Verdict

__all__ = ["MetricResult", "Verdict", "judge", "judge_once"]
