"""The worker's log lines: text for people, JSON for pipelines, no line per HTTP request."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LOGGING = """
import logging
from workers.logs import configure_logging
configure_logging({level!r}, {format!r})
context = {{"workflow_id": "deploy-checkout", "workflow_type": "CanaryDeployment"}}
log = logging.getLogger("temporalio.workflow")
log.info("promoted: v2", extra={{"temporal_workflow": context}})
logging.getLogger("httpx").info('HTTP Request: GET http://127.0.0.1:9901/stats "200 OK"')
logging.getLogger("workers").debug("a detail")
"""


def logged(level: str, log_format: str) -> list[str]:
    code = LOGGING.format(level=level, format=log_format)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr.splitlines()


def test_text_names_the_deployment_and_leaves_out_http_requests() -> None:
    [line] = logged("info", "text")
    assert line.endswith(" INFO deploy-checkout CanaryDeployment: promoted: v2"), line


def test_json_is_one_object_per_line_with_the_deployment_in_its_fields() -> None:
    [line] = logged("info", "json")
    record = json.loads(line)
    assert (record["level"], record["message"]) == ("INFO", "promoted: v2")
    assert record["temporal_workflow"]["workflow_id"] == "deploy-checkout"
    assert {"time", "logger"} <= record.keys()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_debug_adds_the_http_requests(log_format: str) -> None:
    lines = logged("debug", log_format)
    assert len(lines) == 3 and any("HTTP Request" in line for line in lines)
