"""The metric-source interface: one cumulative sample of both arms per call.

`collect` only reads, so retries are harmless. An arm the source knows nothing about is
returned as None ("no data"), which the judge never counts as healthy. A source that
cannot be reached raises MetricsUnavailable.
"""

from __future__ import annotations

from typing import Protocol

from sluicegate.analysis.samples import Sample


class MetricSource(Protocol):
    async def collect(self) -> Sample:
        """Cumulative counters of the stable and canary arms, as of now."""
        ...
