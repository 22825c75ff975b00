"""Notifications end to end: a real worker delivers them over HTTP to local receivers
(one answering like a Slack incoming webhook), with real Envoy and sample services."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from temporalio.client import Client

from deploy.processes import free_port
from deploy.stack import LocalStack, Site
from frontends.client.deployments import start_deployment
from sluicegate.notifications import NotificationChannel
from sluicegate.settings import Settings
from tests.local_http import WebhookReceiver
from tests.waiting import eventually
from workers.client import connect
from workers.main import build_worker
from workflows.canary import CanaryDeployment

pytest_plugins = ["tests.stack_fixtures"]
pytestmark = pytest.mark.e2e
TASK_QUEUE = "notify-e2e"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def channel(name: str, url: str, **options: Any) -> NotificationChannel:
    return NotificationChannel(name=name, url=url, **{"type": "webhook", **options})


@pytest.fixture(scope="module")
async def client(dev_server: str, receiver: WebhookReceiver) -> AsyncIterator[Client]:
    """A worker whose channels are the receiver's, one with nothing listening behind it."""
    channels = (
        channel("oncall-slack", f"{receiver.url}/slack", type="slack", services=("notify-breach",)),
        channel("pager", f"{receiver.url}/pager", min_severity="P2"),
        channel("audit", f"{receiver.url}/audit", services=("notify-dead",)),
        channel("stuck", f"{receiver.url}/hang", services=("notify-dead",)),
        channel("gone", f"http://127.0.0.1:{free_port()}/", services=("notify-dead",)),
    )
    settings = Settings.defaults().model_copy(update={"notifications": channels})
    client = await connect(Settings(temporal_address=dev_server))
    async with build_worker(client, TASK_QUEUE, settings=settings):
        yield client


async def test_a_breach_pages_slack_with_its_numbers_and_the_rest_in_order(
    stack: LocalStack, client: Client, receiver: WebhookReceiver
) -> None:
    site = Site(stack, "notify-breach", error_rates=(0.0, 0.3))
    try:
        stages = [{"name": "half", "weight": 50, "bake": "PT10M"}]
        handle = await start_deployment(client, site.spec(stages=stages), TASK_QUEUE)
        result = await handle.result()
    finally:
        site.stop()
    assert result.outcome == "rolled_back", result.reason
    assert result.notification_failures == ()
    slack = receiver.posts["slack"]
    assert [post["text"].split(":")[0] for post in slack] == [
        "[P3] notify-breach", "[P3] notify-breach", "[P1] notify-breach", "[P3] notify-breach",
    ]  # fmt: skip
    breach = json.dumps(slack[2]["blocks"])
    assert "unhealthy at stage half 50%" in slack[2]["text"]
    assert "error_rate = 0.3" in breach or "errors: canary" in breach  # the failing numbers
    assert "acknowledge within 15 min" in breach
    assert any(block["type"] == "actions" for block in slack[1]["blocks"])  # Promote / Abort
    pager = [post for post in receiver.posts["pager"] if post["service"] == "notify-breach"]
    assert [(post["event"], post["severity"]) for post in pager] == [("breach", "P1")]
    assert pager[0]["evidence"] and pager[0]["link"].endswith(f"{handle.result_run_id}/history")


async def test_dead_and_stuck_channels_never_hold_up_the_deployment(
    stack: LocalStack, client: Client, receiver: WebhookReceiver
) -> None:
    site = Site(stack, "notify-dead")
    try:
        stages = [
            {"name": "canary", "weight": 10, "bake": "PT1S"},
            {"name": "pilot", "weight": 50, "bake": "PT1S"},
        ]
        spec = site.spec(stages=stages, failed_checks_tolerated=1)
        handle = await start_deployment(client, spec, TASK_QUEUE)

        async def promoted() -> bool:
            status = await handle.query(CanaryDeployment.status)
            return status.phase == "promoted"

        await eventually(promoted, "the deployment is promoted", attempts=1200)
        # The stuck channel has been holding notifications all along.
        assert receiver.held >= 1 and "hang" not in receiver.posts
        assert (await site.router_state()).stable_endpoints == (site.canary.address,)
        receiver.release.set()
        result = await handle.result()
    finally:
        site.stop()
    assert result.outcome == "promoted"
    assert receiver.events("audit") == [
        "started", "stage_advanced", "stage_advanced", "guarding", "promoted",
    ]  # fmt: skip
    gone = [failure for failure in result.notification_failures if "gone:" in failure]
    assert len(gone) == 5 and "ConnectError" in gone[0]  # started, 2 stages, guarding, promoted
