"""Notifications, pure: severities, which channel hears what, and the message formats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.notify.slack import SECTION_LIMIT, slack_message
from activities.notify.webhook import webhook_body
from sluicegate.notifications import (
    ButtonTarget,
    Event,
    Notification,
    NotificationChannel,
    Severity,
    severity_of,
)
from sluicegate.settings import SettingsError, load_settings

LINK = "http://ui/namespaces/default/workflows/deploy-checkout/run-1/history"


def a_notification(**changes: Any) -> Notification:
    base: dict[str, Any] = {
        "event": "stage_advanced",
        "severity": "P3",
        "service": "checkout",
        "workflow_id": "deploy-checkout",
        "run_id": "run-1",
        "stable_version": "v1",
        "canary_version": "v2",
        "stage": "pilot",
        "canary_weight": 25,
        "summary": "stage pilot: 25% to v2, bake 1h",
        "at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return Notification.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("event", "weight", "severity"),
    [
        ("rollback_failing", 5, "P0"),
        ("breach", 100, "P0"),
        ("breach", 50, "P1"),
        ("breach", 75, "P1"),
        ("breach", 49, "P2"),
        ("breach", 5, "P2"),
        ("rolled_back", 100, "P3"),
        ("promoted", 100, "P3"),
        ("stage_advanced", 50, "P3"),
        ("awaiting_approval", 20, "P3"),
    ],
)
def test_severity_follows_the_incident_levels(event: Event, weight: int, severity: str) -> None:
    assert severity_of(event, weight) == severity


@pytest.mark.parametrize(
    ("services", "minimum", "service", "severity", "wanted"),
    [
        (("*",), "P3", "checkout", "P3", True),
        (("checkout",), "P3", "checkout", "P3", True),
        (("search",), "P3", "checkout", "P0", False),
        (("*",), "P1", "checkout", "P2", False),
        (("*",), "P1", "checkout", "P1", True),
        (("*",), "P1", "checkout", "P0", True),
    ],
)
def test_a_channel_hears_its_services_at_its_severity(
    services: tuple[str, ...], minimum: Severity, service: str, severity: Severity, wanted: bool
) -> None:
    channel = NotificationChannel(
        name="oncall", type="webhook", url="http://x/", services=services, min_severity=minimum
    )
    assert channel.wants(a_notification(service=service, severity=severity)) is wanted


def test_slack_message_offers_buttons_naming_the_deployment() -> None:
    message = slack_message(a_notification(), LINK)
    assert message["text"] == "[P3] checkout: stage pilot: 25% to v2, bake 1h"
    actions = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == ["promote", "abort"]
    target = ButtonTarget.model_validate_json(actions[0]["value"])
    assert (target.service, target.run_id) == ("checkout", "run-1")
    assert "confirm" in actions[1]  # aborting asks first
    assert LINK in str(message["blocks"])


def test_a_breach_message_carries_the_numbers_and_no_buttons() -> None:
    evidence = ("error_rate = 0.05 (must be <= 0.01; 400 canary requests this check)",)
    breach = a_notification(
        event="breach", severity="P1", canary_weight=50, evidence=evidence, summary="unhealthy"
    )
    message = slack_message(breach, LINK)
    text = str(message["blocks"])
    assert "error_rate = 0.05" in text and "acknowledge within 15 min" in text
    assert not [b for b in message["blocks"] if b["type"] == "actions"]


def test_long_evidence_is_cut_to_what_slack_accepts() -> None:
    evidence = tuple("x" * 100 for _ in range(100))
    message = slack_message(a_notification(event="breach", evidence=evidence), LINK)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(len(text) <= SECTION_LIMIT for text in sections)
    assert sections[1].endswith("…```")


def test_webhook_body_is_the_notification_with_deadline_and_link() -> None:
    body = webhook_body(a_notification(event="breach", severity="P2"), LINK)
    assert body["event"] == "breach" and body["severity"] == "P2"
    assert body["acknowledge_within"] == "30 min" and body["link"] == LINK
    assert body["at"] == "2026-01-01T00:00:00Z"


def test_channels_come_from_the_settings_file(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[notifications]]\nname = "oncall"\ntype = "slack"\n'
        'url = "https://hooks.slack.com/services/T/B/X"\nmin_severity = "P2"\n'
        '[[notifications]]\nname = "audit"\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
        'services = ["checkout"]\n'
    )
    monkeypatch.setenv("SLUICEGATE_CONFIG", str(config))
    channels = load_settings().notifications
    assert [(c.name, c.type, c.min_severity, c.services) for c in channels] == [
        ("oncall", "slack", "P2", ("*",)),
        ("audit", "webhook", "P3", ("checkout",)),
    ]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('name = "a"\ntype = "pager"\nurl = "http://x/"', "notifications"),
        ('name = "a"\ntype = "slack"\nurl = "not a url"', "url"),
        ('name = "a"\ntype = "slack"\nurl = "http://x/"\nmin_severity = "P9"', "min_severity"),
    ],
)
def test_bad_channels_are_refused_naming_the_field(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, entry: str, complaint: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[[notifications]]\n{entry}\n")
    monkeypatch.setenv("SLUICEGATE_CONFIG", str(config))
    with pytest.raises(SettingsError, match=complaint):
        load_settings()


def test_channel_names_are_unique(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    entry = '[[notifications]]\nname = "a"\ntype = "webhook"\nurl = "http://x/"\n'
    config.write_text(entry * 2)
    monkeypatch.setenv("SLUICEGATE_CONFIG", str(config))
    with pytest.raises(SettingsError, match="unique: a"):
        load_settings()
