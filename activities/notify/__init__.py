"""Deliver a notification to every channel that wants it, each on its own.

A channel's failure is reported, never raised: notifications must not fail or delay a
deployment. Each channel gets a few quick attempts; Temporal retries the activity only
if the worker dies.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio import activity

from activities.evidence.recorder import record
from activities.heartbeats import heartbeating
from activities.http import shared_client
from activities.measures import count_notification_failure
from activities.notify.slack import slack_message
from activities.notify.webhook import webhook_body
from sluicegate.contracts import NOTIFY, ChannelFailure, DeliveryReport, NotifyInput
from sluicegate.evidence import EventRecord
from sluicegate.notifications import REPORTED, Notification, NotificationChannel
from sluicegate.settings import Settings

ATTEMPTS = 3
FIRST_PAUSE = 0.5  # seconds before the second attempt; doubles after that
REQUEST_TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class DeliveryFailed(Exception):
    """One attempt failed; `final` when another attempt cannot help (e.g. 404)."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Notifier:
    """The `notify` activity, bound to the worker's channels and Web UI address."""

    def __init__(self, settings: Settings) -> None:
        self.channels = settings.notifications
        self.settings = settings

    @activity.defn(name=NOTIFY)
    @heartbeating
    async def notify(self, request: NotifyInput) -> DeliveryReport:
        notification = request.notification
        wanted = [channel for channel in self.channels if channel.wants(notification)]
        record(EventRecord.of(notification))
        link = self.settings.workflow_link(notification.workflow_id, notification.run_id)
        report = None
        if notification.event in REPORTED:
            deployment_id = notification.first_run_id or notification.run_id
            report = self.settings.report_link(notification.service, deployment_id)
        http = shared_client()
        outcomes = await asyncio.gather(
            *(_deliver(http, channel, notification, link, report) for channel in wanted)
        )
        failed = tuple(
            ChannelFailure(channel=channel.name, error=error)
            for channel, error in zip(wanted, outcomes, strict=True)
            if error is not None
        )
        for channel, error in zip(wanted, outcomes, strict=True):
            if error is not None:
                count_notification_failure(channel.type, notification.event)
        for failure in failed:
            activity.logger.warning("notification to %s failed: %s", failure.channel, failure.error)
        delivered = tuple(c.name for c, e in zip(wanted, outcomes, strict=True) if e is None)
        return DeliveryReport(delivered=delivered, failed=failed)


async def _deliver(
    http: httpx.AsyncClient,
    channel: NotificationChannel,
    notification: Notification,
    link: str,
    report: str | None,
) -> str | None:
    """None once delivered, else why the last attempt failed."""
    body = _body(channel, notification, link, report)
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(FIRST_PAUSE * 2 ** (attempt - 1))
        try:
            await _post(http, channel, body)
            return None
        except DeliveryFailed as err:
            problem = f"{err} (attempt {attempt + 1} of {ATTEMPTS})"
            if err.final:
                break
    return problem


async def _post(http: httpx.AsyncClient, channel: NotificationChannel, body: Any) -> None:
    try:
        response = await http.post(
            str(channel.url), json=body, headers=channel.headers, timeout=REQUEST_TIMEOUT
        )
    except httpx.HTTPError as err:
        raise DeliveryFailed(f"{type(err).__name__}: {err or 'no answer'}") from None
    if response.is_success:
        return
    # Slack answers 4xx for a removed webhook or archived channel: retrying cannot help.
    final = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}", final=final)


def _body(
    channel: NotificationChannel, notification: Notification, link: str, report: str | None
) -> Any:
    if channel.type == "slack":
        return slack_message(notification, link, report)
    return webhook_body(notification, link, report)


__all__ = ["Notifier"]
