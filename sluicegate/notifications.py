"""What a deployment tells people, how urgently, and where: pure models and rules.

The workflow builds a `Notification` at every transition; the `notify` activity delivers
it to the channels of the worker's settings whose services and severity match.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

Severity = Literal["P0", "P1", "P2", "P3"]
Event = Literal[
    "started",
    "stage_advanced",
    "paused",
    "resumed",
    "awaiting_approval",
    "guarding",
    "deadline",
    "breach",
    "rolled_back",
    "not_started",
    "promoted",
    "rollback_failing",
    "promote_requested",
    "abort_requested",
]
# How soon someone must acknowledge, by severity (the incident levels of DESIGN.md).
ACKNOWLEDGE_WITHIN = {"P0": "5 min", "P1": "15 min", "P2": "30 min", "P3": "2 h"}
# Events whose notifications link to the deployment's report page (docs/REPORTS.md).
REPORTED: frozenset[Event] = frozenset({"breach", "rolled_back", "promoted"})
# Slack buttons on notifications: the action_id is the control; the value names the
# deployment, so a click on an old message never steers a later deployment.
BUTTON_ACTIONS = ("promote", "abort")
# Events that leave a person something to decide: their Slack messages get buttons.
DECISIONS: frozenset[Event] = frozenset(
    {"started", "stage_advanced", "paused", "resumed", "awaiting_approval", "guarding", "deadline"}
)


class Notification(BaseModel):
    """One transition of one deployment, with the numbers behind it."""

    model_config = ConfigDict(frozen=True)

    event: Event
    severity: Severity
    service: str
    workflow_id: str
    run_id: str
    first_run_id: str = Field(
        default="", description="the deployment's first run: its buttons steer any run of it"
    )
    stable_version: str
    canary_version: str
    stage: str | None
    canary_weight: int
    summary: str = Field(description="one line: what happened")
    evidence: tuple[str, ...] = Field(
        default=(), description="the failing checks and comparisons, one per line"
    )
    by: str | None = Field(default=None, description="who caused it, for operator controls")
    at: datetime
    committed_at: datetime | None = Field(
        default=None, description="when the canary's change was committed, if the spec says"
    )

    @property
    def offers_decision(self) -> bool:
        return self.event in DECISIONS

    def button_value(self) -> str:
        """The `value` of its Slack buttons; `ButtonTarget.model_validate_json` reads it."""
        run_id = self.first_run_id or self.run_id
        return ButtonTarget(service=self.service, run_id=run_id).model_dump_json()


class ButtonTarget(BaseModel):
    """The deployment a Slack button steers."""

    service: str
    run_id: str


def severity_of(event: Event, canary_weight: int) -> Severity:
    """P0: a rollback that cannot complete, or a breach at 100%; P1: a breach at 50% or
    more; P2: a breach below 50%, or a deadline passed; P3: everything else."""
    if event == "rollback_failing" or (event == "breach" and canary_weight >= 100):
        return "P0"
    if event == "breach":
        return "P1" if canary_weight >= 50 else "P2"
    if event == "deadline":
        return "P2"
    return "P3"


def at_least(severity: Severity, threshold: Severity) -> bool:
    """`P1` is at least `P2`: lower numbers are more urgent."""
    return severity <= threshold


class NotificationChannel(BaseModel):
    """Where notifications go: a Slack incoming webhook or a generic JSON webhook."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="shown in the workflow when delivery fails")
    type: Literal["slack", "webhook"]
    url: HttpUrl
    services: tuple[str, ...] = Field(
        default=("*",), description="services whose deployments it hears about; * for all"
    )
    min_severity: Severity = Field(default="P3", description="quieter notifications are skipped")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra HTTP headers, e.g. Authorization"
    )

    @field_validator("services")
    @classmethod
    def _some_services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one service, or * for all")
        return value

    def wants(self, notification: Notification) -> bool:
        listed = "*" in self.services or notification.service in self.services
        return listed and at_least(notification.severity, self.min_severity)
