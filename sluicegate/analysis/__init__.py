"""Pure canary analysis: measurements and a policy in, a verdict with its evidence out."""

from sluicegate.analysis.threshold import judge
from sluicegate.analysis.verdict import MetricResult, Verdict

__all__ = ["MetricResult", "Verdict", "judge"]
