"""The metric-source interface: one cumulative sample of both arms per call.

`collect` only reads, so retries are harmless. An arm the source knows nothing about is
returned as None ("no data"), which the judge never counts as healthy. A source that
cannot be reached raises MetricsUnavailable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sluicegate.analysis.samples import Sample


@dataclass(frozen=True)
class SourceContext:
    """The deployment a source measures, e.g. for the variables of a PromQL template."""

    service: str
    stable_version: str
    canary_version: str
    interval: timedelta


class MetricSource(Protocol):
    async def collect(self) -> Sample:
        """Cumulative counters of the stable and canary arms, as of now."""
        ...
