"""A notification as the JSON body of a generic webhook: the notification itself plus
its acknowledgement deadline, a Web UI link and the report page's."""

from __future__ import annotations

from typing import Any

from sluicegate.notifications import ACKNOWLEDGE_WITHIN, Notification


def webhook_body(
    notification: Notification, link: str, report: str | None = None
) -> dict[str, Any]:
    """`report`: the report page's address, when the worker's settings say where."""
    return {
        **notification.model_dump(mode="json"),
        "acknowledge_within": ACKNOWLEDGE_WITHIN[notification.severity],
        "link": link,
        "report": report,
    }
