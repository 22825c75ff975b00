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

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
CHATTY = ("httpx", "httpcore")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(where)s: %(message)s"


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


def _temporal_context(record: logging.LogRecord) -> Mapping[str, object]:
    """The details Temporal's loggers add to a line, by name; empty for any other line."""
    context: object = getattr(record, "temporal_workflow", None) or getattr(
        record, "temporal_activity", None
    )
    if not isinstance(context, dict):
        return {}
    # LogRecord has no such attribute in its types; Temporal's loggers set a dict keyed by str.
    return cast(dict[str, object], context)


def configure_logging(level: LogLevel = "info", log_format: LogFormat = "text") -> None:
    """Log to stderr at `level`, as text lines or one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
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
