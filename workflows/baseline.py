"""Stable before any traffic moves: measured for `analysis.baseline`, so the limits stable
already breaches are known (the judge does not hold them against the canary)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from sluicegate.analysis.baseline import Baseline
    from sluicegate.contracts import MEASURE_BASELINE, BaselineInput
    from sluicegate.describe import short_duration
    from sluicegate.spec import AnalysisSpec, DeploymentSpec
    from workflows.restore import root_cause
    from workflows.retries import QUICK_HEARTBEAT, QUICK_RETRIES
    from workflows.steps import WAIT


class StableBefore:
    """Stable against every limit before the deployment, or why that is unknown."""

    def __init__(self) -> None:
        self.baseline: Baseline | None = None
        self.missing: str | None = None  # why there is no baseline

    def lines(self, analysis: AnalysisSpec) -> tuple[str, ...]:
        if self.baseline is not None:
            return self.baseline.lines(analysis)
        if self.missing is not None:
            return (f"stable {self.missing}: limits are held as written",)
        return ()

    async def measure(self, spec: DeploymentSpec, aborted: Callable[[], bool]) -> None:
        """Watch stable for `analysis.baseline`. An abort stops the measuring at once (the
        rollback follows); a cancellation stops it and is raised for the rollback; a failed
        measurement is noted and the deployment goes on with the limits as written."""
        length = spec.analysis.baseline
        measuring = workflow.start_activity(
            MEASURE_BASELINE,
            BaselineInput(
                service=spec.service,
                analysis=spec.analysis,
                stable_version=spec.stable.version,
                canary_version=spec.canary.version,
            ),
            result_type=Baseline,
            start_to_close_timeout=length + timedelta(seconds=60),
            heartbeat_timeout=QUICK_HEARTBEAT,
            retry_policy=QUICK_RETRIES,
            cancellation_type=WAIT,
            summary=f"watch stable {short_duration(length)} before any traffic",
        )
        try:
            await workflow.wait_condition(lambda: measuring.done() or aborted())
        finally:
            if not measuring.done():  # aborted, or the deployment was cancelled
                measuring.cancel()
                await workflow.wait([measuring])
        if measuring.cancelled():
            return
        error = measuring.exception()
        if error is None:
            self.baseline = measuring.result()
        elif is_cancelled_exception(error):
            if not aborted():  # not stopped for an abort: a cancellation, roll back
                raise error
        else:
            self.missing = f"could not be measured ({root_cause(error)})"
