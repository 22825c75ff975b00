"""Several sources as one: counters from the main source, business metrics from all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from activities.metrics.base import MetricSource
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.errors import MetricsUnavailable


class CombinedSource:
    """The main source's sample with the extra sources' business metrics merged in.

    An extra source that fails only loses its business metrics for this check (they are
    then "no data", never healthy); the main source failing fails the collect.
    """

    def __init__(self, main: MetricSource, extras: Sequence[MetricSource]) -> None:
        self.main = main
        self.extras = tuple(extras)

    async def collect(self) -> Sample:
        main, *extras = await asyncio.gather(
            self.main.collect(), *(_collect_or_note(extra) for extra in self.extras)
        )
        notes = list(main.notes)
        stable, canary = main.stable, main.canary
        for extra in extras:
            notes += extra.notes
            stable = _with_business(stable, extra.stable)
            canary = _with_business(canary, extra.canary)
        return main.model_copy(update={"stable": stable, "canary": canary, "notes": tuple(notes)})


async def _collect_or_note(source: MetricSource) -> Sample:
    try:
        return await source.collect()
    except MetricsUnavailable as err:
        return Sample(at=datetime.now(UTC), stable=None, canary=None, notes=(str(err),))


def _with_business(arm: ArmCounters | None, extra: ArmCounters | None) -> ArmCounters | None:
    if arm is None or extra is None:
        return arm
    return arm.model_copy(update={"business": {**arm.business, **extra.business}})
