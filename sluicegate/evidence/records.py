"""What the evidence store keeps: a check, an event, a gap of its own; and where it is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from sluicegate.analysis.verdict import Status, Verdict
from sluicegate.evidence.numbers import ArmNumbers, TrendPoint
from sluicegate.notifications import Notification

# Outcome events: a deployment has ended once one of these is kept.
OUTCOMES = ("promoted", "rolled_back", "not_started")
# Events that are not notifications: written by the activity that did the thing.
ROLLBACK_VERIFIED = "rollback_verified"
HOOK = "hook"
_QUERY_PASSWORD = re.compile(r"([?&])password=[^&]*&?")  # libpq takes one there too


@dataclass(frozen=True)
class StoreUrl:
    """Where the store is: a SQLite file or a PostgreSQL URL (the `evidence_url` setting)."""

    kind: str  # "sqlite" or "postgresql"
    target: str  # the file's path, or the URL

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        """`postgresql://…`, `sqlite:///abs/path`, `sqlite:rel/path` or a bare file path."""
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", url)
        if url.startswith("sqlite:"):
            path = url.removeprefix("sqlite:")
            path = "/" + path.lstrip("/") if path.startswith("///") else path.removeprefix("//")
            return cls("sqlite", path)
        if "://" in url:
            raise ValueError(
                f"unknown store {url.split('://')[0]!r}: use a SQLite file path, "
                "sqlite:///absolute/path or postgresql://user@host:port/database"
            )
        return cls("sqlite", url)

    def describe(self) -> str:
        """The URL without its password."""
        if self.kind == "sqlite":
            return f"SQLite {self.target}"
        target = _QUERY_PASSWORD.sub(r"\1", self.target).rstrip("?&")
        head, _, rest = target.partition("://")
        credentials, at, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        return f"{head}://{user}{at}{host}" if at else target


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class CheckRecord(_Model):
    """One judged check of one deployment: kept once per (run, stage, number)."""

    deployment_id: str = Field(description="the deployment's first run id")
    run_id: str
    service: str
    stage: str
    number: int
    at: datetime
    canary_weight: int
    status: Status
    rollback: bool = Field(description="this check made the stage roll back")
    stable: ArmNumbers | None
    canary: ArmNumbers | None
    verdict: Verdict
    drift: str | None = None
    notes: tuple[str, ...] = ()

    def trend_point(self) -> TrendPoint:
        return TrendPoint(
            canary=self.canary.error_rate if self.canary else None,
            stable=self.stable.error_rate if self.stable else None,
        )


class EventRecord(_Model):
    """One thing that happened to a deployment: a notification's event, a hook's run, a
    rollback verified by read-back. Kept once per (run, kind, at, detail)."""

    deployment_id: str = Field(description="empty when the writer knew only the run")
    run_id: str
    service: str = ""
    kind: str
    at: datetime
    stage: str | None = None
    canary_weight: int | None = None
    summary: str = ""
    by: str | None = None
    evidence: tuple[str, ...] = ()
    stable_version: str = ""
    canary_version: str = ""
    committed_at: datetime | None = None

    ident: str = Field(
        default="", description="what makes it unique if not its time: e.g. an activity id"
    )

    @classmethod
    def of(cls, notification: Notification) -> EventRecord:
        """The event a notification tells of."""
        n = notification
        return cls(
            deployment_id=n.first_run_id or n.run_id,
            run_id=n.run_id,
            service=n.service,
            kind=n.event,
            at=n.at,
            stage=n.stage,
            canary_weight=n.canary_weight,
            summary=n.summary,
            by=n.by,
            evidence=n.evidence,
            stable_version=n.stable_version,
            canary_version=n.canary_version,
            committed_at=n.committed_at,
        )

    @property
    def key(self) -> str:
        """What makes it the same event when a retried activity writes it again."""
        if self.ident:
            return f"{self.kind}|{self.ident}"
        return f"{self.kind}|{self.at.isoformat()}|{self.summary}"


class StoreGap(_Model):
    """A time the store could not take what the activities wrote: what was lost."""

    began_at: datetime
    ended_at: datetime
    checks: int = Field(description="checks not kept")
    events: int = Field(description="events not kept")
    error: str
    deployments: tuple[str, ...] = Field(default=(), description="deployment ids affected")

    def describe(self) -> str:
        return (
            f"evidence store unavailable {self.began_at:%Y-%m-%d %H:%M:%S} to "
            f"{self.ended_at:%H:%M:%S} UTC: {self.checks} checks and {self.events} events "
            f"not kept ({self.error})"
        )
