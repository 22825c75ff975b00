"""A notification as the JSON body of a generic webhook: the notification itself plus
its acknowledgement deadline and a Web UI link."""

from __future__ import annotations

from typing import Any

from sluicegate.notifications import ACKNOWLEDGE_WITHIN, Notification


def webhook_body(notification: Notification, link: str) -> dict[str, Any]:
    return {
        **notification.model_dump(mode="json"),
        "acknowledge_within": ACKNOWLEDGE_WITHIN[notification.severity],
        "link": link,
    }
