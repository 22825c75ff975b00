"""Parse the text of a `/deploy` slash command (pure)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from sluicegate.chatops_settings import ACTIONS, ChatAction
from sluicegate.contracts import MAX_REASON
from sluicegate.spec import service_name_problem

USAGE = (
    "usage: /deploy status|promote|abort|pause|resume|rollback SERVICE [reason]; "
    "promote also takes --full (skip to 100%), e.g. `/deploy promote checkout --full ship it`"
)


@dataclass(frozen=True)
class Command:
    action: ChatAction
    service: str
    reason: str = ""
    full: bool = False


class UsageError(ValueError):
    """The command cannot be understood; the message says what is wrong and what is valid."""


def parse(text: str) -> Command:
    """`promote checkout --full dashboards green` → Command; else UsageError naming the part."""
    words = text.split()
    if not words or words[0].lower() == "help":
        raise UsageError(USAGE)
    action = words[0].lower()
    if action not in ACTIONS:
        raise UsageError(f"unknown action {words[0]!r}; valid: {', '.join(ACTIONS)}. {USAGE}")
    if len(words) < 2 or words[1].startswith("--"):
        raise UsageError(f"{action}: which service? {USAGE}")
    service = words[1]
    if problem := service_name_problem(service):
        raise UsageError(f"SERVICE {problem}. {USAGE}")
    rest = words[2:]
    options = [word for word in rest if word.startswith("--")]
    if unknown := [option for option in options if option != "--full"]:
        raise UsageError(f"unknown option {unknown[0]}; only promote takes an option, --full")
    full = "--full" in options
    if full and action != "promote":
        raise UsageError(f"--full goes with promote only, not {action}")
    reason = html.unescape(" ".join(word for word in rest if not word.startswith("--")))
    if len(reason) > MAX_REASON:
        raise UsageError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    return Command(action=action, service=service, reason=reason, full=full)
