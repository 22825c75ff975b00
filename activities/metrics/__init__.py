"""Metric sources, one module each, chosen by the spec's `type` through `metric_source_for`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.metrics.base import MetricSource, SourceContext
from activities.metrics.combined import CombinedSource
from activities.metrics.envoy import EnvoyStatsSource
from activities.metrics.haproxy import HAProxyStatsSource
from activities.metrics.http_probe import HttpProbeSource
from activities.metrics.prometheus import PrometheusMetrics
from sluicegate.errors import SpecError
from sluicegate.spec import AnalysisSpec, MetricSourceSpec

# One line per metric-source module; the key is the spec model's `type`.
METRIC_SOURCES: dict[str, Callable[[Any, SourceContext], MetricSource]] = {
    "envoy": EnvoyStatsSource,
    "haproxy": HAProxyStatsSource,
    "http_probe": HttpProbeSource,
    "prometheus": PrometheusMetrics,
}


def metric_source_for(spec: MetricSourceSpec, context: SourceContext) -> MetricSource:
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
    return factory(spec, context)


def analysis_source(analysis: AnalysisSpec, context: SourceContext) -> MetricSource:
    """The analysis's main source, joined by its extra sources' business metrics."""
    main = metric_source_for(analysis.source, context)
    if not analysis.extra_sources:
        return main
    extras = [metric_source_for(extra, context) for extra in analysis.extra_sources]
    return CombinedSource(main, extras)


__all__ = [
    "METRIC_SOURCES",
    "MetricSource",
    "SourceContext",
    "analysis_source",
    "metric_source_for",
]
