"""Metric sources, one module each, chosen by the spec's `type` through `metric_source_for`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.metrics.base import MetricSource
from activities.metrics.envoy import EnvoyStatsSource
from sluicegate.errors import SpecError
from sluicegate.spec import MetricSourceSpec

# One line per metric-source module; the key is the spec model's `type`.
METRIC_SOURCES: dict[str, Callable[[Any], MetricSource]] = {
    "envoy": EnvoyStatsSource,
}


def metric_source_for(spec: MetricSourceSpec) -> MetricSource:
    """The metric source for `spec`; an unknown type is a SpecError, never a fallback."""
    kind = getattr(spec, "type", type(spec).__name__)
    factory = METRIC_SOURCES.get(kind)
    if factory is None:
        raise SpecError(
            [
                f"analysis.source.type: no metric source named {kind!r} "
                f"(known: {', '.join(METRIC_SOURCES)})"
            ]
        )
    return factory(spec)


__all__ = ["METRIC_SOURCES", "MetricSource", "metric_source_for"]
