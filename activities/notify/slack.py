"""A notification as a Slack incoming-webhook message (Block Kit), with Promote / Abort
buttons when a person has something to decide."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from sluicegate.notifications import ACKNOWLEDGE_WITHIN, Notification

ICONS = {"P0": ":rotating_light:", "P1": ":red_circle:", "P2": ":large_orange_circle:"}
EVENT_ICONS = {
    "promoted": ":white_check_mark:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "not_started": ":no_entry_sign:",
    "paused": ":double_vertical_bar:",
    "awaiting_approval": ":raised_hand:",
}
SECTION_LIMIT = 3000  # characters Slack accepts in one section's text


def slack_message(
    notification: Notification, link: str, report: str | None = None
) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook; `report`: the report page's address."""
    n = notification
    icon = ICONS.get(n.severity) or EVENT_ICONS.get(n.event, ":information_source:")
    headline = f"{icon} *[{n.severity}] {n.service}*: {n.summary}"
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=_fit(headline)))]
    if n.evidence:
        evidence = "\n".join(n.evidence)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_fit(f"```{evidence}```"))))
    where = _where(n)
    context = [where, f"<{link}|Web UI>"]
    if report:
        context.append(f"<{report}|Report>")
    if n.severity != "P3":
        context.append(f"acknowledge within {ACKNOWLEDGE_WITHIN[n.severity]}")
    if n.by:
        context.append(f"by {n.by}")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context))]))
    if n.offers_decision:
        blocks.append(_buttons(n))
    return {
        "text": f"[{n.severity}] {n.service}: {n.summary}",  # for notifications and old clients
        # slack_sdk leaves to_dict's *args unannotated and returns a bare dict.
        "blocks": [block.to_dict() for block in blocks],  # pyright: ignore[reportUnknownMemberType]
    }


def _where(n: Notification) -> str:
    if n.event == "promoted":
        return f"{n.canary_version} serves all traffic (was {n.stable_version})"
    if n.event == "rolled_back":
        return f"{n.stable_version} serves all traffic ({n.canary_version} rolled back)"
    if n.event == "not_started":
        return f"{n.stable_version} serves all traffic ({n.canary_version} never got any)"
    where = f"{n.stable_version} → {n.canary_version}, {n.canary_weight}% on the canary"
    return f"{where} (stage {n.stage})" if n.stage else where


def _buttons(n: Notification) -> ActionsBlock:
    value = n.button_value()
    return ActionsBlock(
        elements=[
            ButtonElement(text="Promote", action_id="promote", value=value, style="primary"),
            ButtonElement(
                text="Abort",
                action_id="abort",
                value=value,
                style="danger",
                confirm=ConfirmObject(
                    title="Abort the deployment?",
                    text=f"{n.service} goes back to 100% {n.stable_version}.",
                    confirm="Abort",
                    deny="Keep going",
                ),
            ),
        ]
    )


def _fit(text: str) -> str:
    if len(text) <= SECTION_LIMIT:
        return text
    if text.endswith("```"):
        return text[: SECTION_LIMIT - 4] + "…```"
    return text[:SECTION_LIMIT]
