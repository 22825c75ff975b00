"""How the worker logs: one line per event that matters, as text for people or JSON for log
pipelines.

The events are the deployments' own (started, each stage, breach, rollback, promotion,
refused controls) and errors. HTTP clients log a line per request, several per health
check; they are heard only at `debug`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Literal, cast

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
CHATTY = ("httpx", "httpcore")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(where)s: %(message)s"
# The flat fields a JSON line carries when it is about a deployment (docs/OBSERVABILITY.md).
DEPLOYMENT_FIELDS = ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt")


class _Where(logging.Filter):
    """Name each line by the workflow or activity it is about, else by its logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _temporal_context(record)
        if context.get("workflow_id"):
            kind = context.get("activity_type") or context.get("workflow_type")
            record.where = f"{context['workflow_id']} {kind}"
        else:
            record.where = record.name
        return True


class _Deployment(logging.Filter):
    """Put the deployment a line is about in fields of its own (workflow_id, run_id, ...),
    and the current span's trace_id and span_id when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _temporal_context(record)
        for field in DEPLOYMENT_FIELDS:
            value = context.get(field)
            if value is not None and not hasattr(record, field):
                setattr(record, field, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = trace.format_trace_id(span.trace_id)
            record.span_id = trace.format_span_id(span.span_id)
        return True


def _temporal_context(record: logging.LogRecord) -> Mapping[str, object]:
    """The details Temporal's loggers add to a line, by name, with the run id as `run_id`
    (an activity's says `workflow_run_id`). A line from any other logger while an activity
    runs (a router's, an HTTP client's) gets the activity's; empty for any other line."""
    context: object = getattr(record, "temporal_workflow", None) or getattr(
        record, "temporal_activity", None
    )
    if isinstance(context, dict):
        # LogRecord has no such attribute in its types; Temporal's loggers set a dict by str.
        details = cast(dict[str, object], context)
    elif activity.in_activity():
        info = activity.info()
        details = {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    else:
        return {}
    if "workflow_run_id" in details:
        details = {**details, "run_id": details["workflow_run_id"]}
    return details


def configure_logging(level: LogLevel = "info", log_format: LogFormat = "text") -> None:
    """Log to stderr at `level`, as text lines or one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Deployment())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.addFilter(_Where())
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    # The workflow or activity a line is about goes in its own fields, not in the message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
