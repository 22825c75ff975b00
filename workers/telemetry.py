"""Traces: the one OpenTelemetry set-up of the worker, the `sluice` CLI and chat-ops.

Tracing is on when the standard OpenTelemetry environment asks for it: an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or
`OTEL_TRACES_EXPORTER=otlp`, and not `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`.
Then spans go over OTLP/HTTP (protobuf) through a batch processor; the SDK itself reads the
rest of the environment (headers, timeout, compression, certificates, sampler, batch sizes,
resource attributes). Otherwise nothing is installed, not even imported: the API's no-op
tracer stays, and the Temporal `TracingInterceptor` that `workers.client.connect` adds
makes no spans and sends no trace headers.

Spans themselves come from that interceptor (client calls, workflow and activity spans),
from the CLI's command span (`frontends/cli/session.py`) and from the health watcher's
check spans (`activities/deployment.py`). docs/OBSERVABILITY.md draws the tree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

# The service.name of each process, unless OTEL_SERVICE_NAME (or service.name in
# OTEL_RESOURCE_ATTRIBUTES) says otherwise.
WORKER = "sluicegate-worker"
CLI = "sluice"
CHATOPS = "sluicegate-chatops"
# Only this transport is installed (opentelemetry-exporter-otlp-proto-http).
PROTOCOL = "http/protobuf"

log = logging.getLogger(__name__)


class _Installed:
    """The process's tracer provider, once installed, and whether it has been shut down."""

    provider: TracerProvider | None = None
    shut_down = False


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard OTEL_* environment asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {
        name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
    }
    if "none" in exporters:
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(endpoint) or "otlp" in exporters


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Install the OTLP/HTTP tracer provider as the global one if the environment asks for
    it (once per process; a second call returns the first provider). None when off."""
    if _Installed.provider is not None:
        return _Installed.provider
    if not tracing_wanted():
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", PROTOCOL
    )
    if protocol.strip() != PROTOCOL:
        log.warning("OTLP protocol %r is not supported; traces are sent as %s", protocol, PROTOCOL)
    provider = TracerProvider(resource=_resource(service_name))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _Installed.provider = provider
    return provider


def shutdown_tracing() -> None:
    """Export the spans still buffered and stop the exporter: before a process exits (the
    CLI leaves with os._exit, which skips the SDK's own exit hook). Safe to call twice."""
    if _Installed.provider is not None and not _Installed.shut_down:
        _Installed.shut_down = True
        _Installed.provider.shutdown()


def _resource(service_name: str) -> Resource:
    """The SDK's resource from the environment, named `service_name` unless it names one."""
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource

    if OTELResourceDetector().detect().attributes.get(SERVICE_NAME):
        return Resource.create()
    return Resource.create({SERVICE_NAME: service_name})
