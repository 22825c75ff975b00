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


IN_AN_ACTIVITY = """
import asyncio, dataclasses, logging
from temporalio import activity
from temporalio.testing import ActivityEnvironment
from workers.logs import configure_logging
configure_logging("info", "json")

@activity.defn(name="watch_health")
async def watch() -> None:
    activity.logger.info("no data this check")
    logging.getLogger("activities.routers.envoy").warning("router drifted")

env = ActivityEnvironment()
env.info = dataclasses.replace(env.info, workflow_id="deploy-checkout", workflow_run_id="run-1",
    activity_type="watch_health")
asyncio.run(env.run(watch))
logging.getLogger("workers.main").info("worker on 127.0.0.1:7233")
"""


def test_json_lines_carry_the_workflow_and_run_id_as_fields_in_activities_too() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IN_AN_ACTIVITY], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    activity_line, router_line, worker_line = map(json.loads, done.stderr.splitlines())
    for record in (activity_line, router_line):
        assert (record["workflow_id"], record["run_id"]) == ("deploy-checkout", "run-1"), record
        assert record["activity_type"] == "watch_health"
    assert "workflow_id" not in worker_line and "run_id" not in worker_line


def test_json_workflow_lines_have_flat_fields() -> None:
    [line] = logged("info", "json")
    record = json.loads(line)
    assert (record["workflow_id"], record["workflow_type"]) == (
        "deploy-checkout",
        "CanaryDeployment",
    )
