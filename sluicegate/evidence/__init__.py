"""What the evidence store keeps of a deployment, and what is read back out of it: pure
models and the figures computed from them (docs/REPORTS.md).

Activities write `CheckRecord`s and `EventRecord`s; the report page, `sluice report` and the
worker's DORA gauges read them back as a `DeploymentEvidence` or `DeploymentSummary`.
"""

from sluicegate.evidence.dora import (
    ChecksSeen,
    DeploymentEvidence,
    DeploymentSummary,
    DoraFigures,
    Outcome,
    dora,
    summarize,
)
from sluicegate.evidence.numbers import (
    SPARKS,
    TREND_LENGTH,
    ArmNumbers,
    TrendPoint,
    arm_numbers,
    check_numbers,
    extend_trend,
    sparkline,
    trend_lines,
)
from sluicegate.evidence.records import (
    HOOK,
    OUTCOMES,
    ROLLBACK_VERIFIED,
    CheckRecord,
    EventRecord,
    StoreGap,
    StoreUrl,
)

__all__ = [
    "HOOK",
    "OUTCOMES",
    "ROLLBACK_VERIFIED",
    "SPARKS",
    "TREND_LENGTH",
    "ArmNumbers",
    "CheckRecord",
    "ChecksSeen",
    "DeploymentEvidence",
    "DeploymentSummary",
    "DoraFigures",
    "EventRecord",
    "Outcome",
    "StoreGap",
    "StoreUrl",
    "TrendPoint",
    "arm_numbers",
    "check_numbers",
    "dora",
    "extend_trend",
    "sparkline",
    "summarize",
    "trend_lines",
]
