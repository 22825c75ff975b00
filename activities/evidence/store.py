"""The evidence store itself: one connection to SQLite or PostgreSQL, brought up to the newest
schema on opening. Writes are idempotent: a record written again replaces itself.

Blocking calls: the worker writes from the recorder's own thread, front ends from a thread
of theirs. One `EvidenceStore` belongs to one thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg

from activities.evidence.schema import MIGRATIONS, SCHEMA_VERSION
from sluicegate.errors import SluicegateError
from sluicegate.evidence import (
    CheckRecord,
    ChecksSeen,
    DeploymentEvidence,
    DeploymentSummary,
    EventRecord,
    StoreGap,
    StoreUrl,
    summarize,
)

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000
# Two workers opening a new PostgreSQL store at once: one migrates, the other waits.
MIGRATION_LOCK = 0x5E1DE6A7E
Record = CheckRecord | EventRecord | StoreGap


class StoreUnavailable(SluicegateError):
    """The evidence store cannot be opened or does not answer."""


class _Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> Any: ...
    def close(self) -> None: ...


class _Sqlite:
    def __init__(self, path: str) -> None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            Path(path).expanduser(),
            timeout=CONNECT_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            self.db.execute("PRAGMA journal_mode=WAL")  # readers (sluice report) beside the worker
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:  # e.g. the file is not a database
            self.db.close()
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def transaction(self) -> Generator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class _Postgres:
    def __init__(self, url: str) -> None:
        self.db = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.db.execute(sql.replace("?", "%s"), tuple(params))  # pyright: ignore[reportArgumentType]
        return cursor.fetchall() if cursor.description else []

    @contextmanager
    def transaction(self) -> Generator[None]:
        with self.db.transaction():
            yield

    def close(self) -> None:
        self.db.close()


def _epoch(at: datetime) -> float:
    return at.timestamp()


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class EvidenceStore:
    """Checks, events and gaps of every deployment; see docs/REPORTS.md."""

    def __init__(self, url: StoreUrl, create: bool = True) -> None:
        """Open the store (a reader passes `create=False`: no new SQLite file for it)."""
        self.url = url
        if not create and url.kind == "sqlite" and not Path(url.target).expanduser().exists():
            raise StoreUnavailable(
                f"no evidence store at {url.target} (evidence_url, SLUICEGATE_EVIDENCE_URL): "
                "give the workers' store; a worker creates it at its first check"
            )
        try:
            self._db: _Connection = (
                _Sqlite(url.target) if url.kind == "sqlite" else _Postgres(url.target)
            )
            try:
                self._migrate()
            except BaseException:  # refused or failed: no connection left open behind
                self._db.close()
                raise
        except (sqlite3.Error, psycopg.Error, OSError) as err:
            raise StoreUnavailable(f"evidence store {url.describe()}: {_brief(err)}") from None

    @classmethod
    def open(cls, url: str) -> EvidenceStore:
        return cls(StoreUrl.parse(url))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------

    def schema_version(self) -> int:
        rows = self._db.execute("SELECT version FROM sluicegate_schema")
        return int(rows[0][0]) if rows else 0

    def _migrate(self) -> None:
        """Apply the migrations this store lacks, in one transaction."""
        with self._db.transaction():
            if self.url.kind == "postgresql":
                self._db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sluicegate_schema (version INTEGER NOT NULL)"
            )
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"evidence store {self.url.describe()} has schema {version}, newer than this "
                    f"Sluicegate's {SCHEMA_VERSION}: upgrade Sluicegate"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    self._db.execute(statement)
            if version == 0:
                self._db.execute("INSERT INTO sluicegate_schema (version) VALUES (?)", (0,))
            self._db.execute("UPDATE sluicegate_schema SET version = ?", (SCHEMA_VERSION,))

    # -- writing ---------------------------------------------------------------------------

    def write(self, records: Sequence[Record]) -> None:
        """Keep `records` in one transaction; one written again replaces itself."""
        with self._db.transaction():
            runs = {
                record.run_id: record.deployment_id
                for record in records
                if not isinstance(record, StoreGap) and record.deployment_id
            }
            for run_id, deployment_id in runs.items():  # first: an event may need them
                self._db.execute(
                    "INSERT INTO runs (run_id, deployment_id) VALUES (?, ?) "
                    "ON CONFLICT (run_id) DO NOTHING",
                    (run_id, deployment_id),
                )
                # Kept before its run was known (a hook that ran before the first notification).
                self._db.execute(
                    "UPDATE events SET deployment_id = ? WHERE run_id = ? AND deployment_id = ''",
                    (deployment_id, run_id),
                )
            for record in records:
                if isinstance(record, CheckRecord):
                    self._write_check(record)
                elif isinstance(record, EventRecord):
                    self._write_event(record)
                else:
                    self._write_gap(record)

    def _write_check(self, check: CheckRecord) -> None:
        self._db.execute(
            "INSERT INTO checks (run_id, stage, number, deployment_id, service, at, "
            "canary_weight, rollback, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, stage, number) DO UPDATE SET "
            "deployment_id = excluded.deployment_id, service = excluded.service, "
            "at = excluded.at, canary_weight = excluded.canary_weight, "
            "rollback = excluded.rollback, body = excluded.body",
            (
                check.run_id,
                check.stage,
                check.number,
                check.deployment_id,
                check.service,
                _epoch(check.at),
                check.canary_weight,
                int(check.rollback),
                check.model_dump_json(),
            ),
        )

    def _write_event(self, event: EventRecord) -> None:
        if not event.deployment_id:
            rows = self._db.execute(
                "SELECT deployment_id FROM runs WHERE run_id = ?", (event.run_id,)
            )
            if rows:
                event = event.model_copy(update={"deployment_id": rows[0][0]})
        self._db.execute(
            "INSERT INTO events (run_id, key, deployment_id, service, kind, at, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
            "deployment_id = excluded.deployment_id, service = excluded.service, "
            "kind = excluded.kind, at = excluded.at, body = excluded.body",
            (
                event.run_id,
                event.key,
                event.deployment_id,
                event.service,
                event.kind,
                _epoch(event.at),
                event.model_dump_json(),
            ),
        )

    def _write_gap(self, gap: StoreGap) -> None:
        self._db.execute(
            "INSERT INTO gaps (began_at, ended_at, body) VALUES (?, ?, ?) "
            "ON CONFLICT (began_at) DO UPDATE SET ended_at = excluded.ended_at, "
            "body = excluded.body",
            (_epoch(gap.began_at), _epoch(gap.ended_at), gap.model_dump_json()),
        )

    def purge(self, before: datetime) -> int:
        """Forget everything from before `before` (the retention setting); rows deleted."""
        cutoff = _epoch(before)
        deleted = 0
        with self._db.transaction():
            for table, column in (("checks", "at"), ("events", "at"), ("gaps", "ended_at")):
                found = self._db.execute(
                    f"SELECT count(*) FROM {table} WHERE {column} < ?", (cutoff,)
                )
                self._db.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))
                deleted += int(found[0][0])
            self._db.execute(
                "DELETE FROM runs WHERE deployment_id NOT IN (SELECT deployment_id FROM events) "
                "AND deployment_id NOT IN (SELECT deployment_id FROM checks)"
            )
        return deleted

    # -- reading ---------------------------------------------------------------------------

    def latest(self, service: str) -> str | None:
        """The deployment id of `service`'s latest deployment, if any was kept."""
        rows = self._db.execute(
            "SELECT deployment_id, max(at) FROM (SELECT deployment_id, at FROM events "
            "WHERE service = ? AND deployment_id <> '' UNION ALL SELECT deployment_id, at "
            "FROM checks WHERE service = ?) AS kept GROUP BY deployment_id ORDER BY 2 DESC "
            "LIMIT 1",
            (service, service),
        )
        return str(rows[0][0]) if rows else None

    def find(self, service: str, run: str) -> str | None:
        """The deployment id `run` names: a deployment's or any of its runs' id, or the
        start of one."""
        rows = self._db.execute(
            "SELECT DISTINCT runs.deployment_id FROM runs JOIN events "
            "ON events.deployment_id = runs.deployment_id WHERE events.service = ? "
            "AND (runs.run_id LIKE ? OR runs.deployment_id LIKE ?)",
            (service, f"{run}%", f"{run}%"),
        )
        if len(rows) > 1:
            found = ", ".join(str(row[0]) for row in rows)
            raise LookupError(f"{run!r} names more than one deployment of {service}: {found}")
        return str(rows[0][0]) if rows else None

    def evidence(self, deployment_id: str) -> DeploymentEvidence | None:
        """Everything kept of one deployment, in time order; None if nothing was."""
        checks = tuple(
            CheckRecord.model_validate_json(row[0])
            for row in self._db.execute(
                "SELECT body FROM checks WHERE deployment_id = ? ORDER BY at, number",
                (deployment_id,),
            )
        )
        events = self._events([deployment_id])[deployment_id]
        summary = summarize(deployment_id, events, ChecksSeen.of(checks))
        if summary is None:
            return None
        ended = summary.ended_at or datetime.now(UTC)
        gaps = tuple(
            StoreGap.model_validate_json(row[0])
            for row in self._db.execute(
                "SELECT body FROM gaps WHERE ended_at >= ? AND began_at <= ? ORDER BY began_at",
                (_epoch(summary.started_at), _epoch(ended)),
            )
        )
        return DeploymentEvidence(
            summary=summary.model_copy(update={"deployment_id": deployment_id}),
            checks=checks,
            events=events,
            gaps=gaps,
        )

    def summaries(self, since: datetime, service: str | None = None) -> list[DeploymentSummary]:
        """Every deployment with anything kept since `since` (of `service`), oldest first."""
        where, params = "at >= ? AND deployment_id <> ''", [_epoch(since)]
        if service is not None:
            where, params = f"{where} AND service = ?", [*params, service]
        ids = [
            str(row[0])
            for row in self._db.execute(
                f"SELECT deployment_id FROM events WHERE {where} UNION "
                f"SELECT deployment_id FROM checks WHERE {where}",
                [*params, *params],
            )
        ]
        seen = self._checks_seen(ids)
        events = self._events(ids)
        found = [summarize(i, events[i], seen.get(i)) for i in ids]
        return sorted((s for s in found if s is not None), key=lambda s: s.started_at)

    def _events(self, ids: Sequence[str]) -> dict[str, tuple[EventRecord, ...]]:
        found: dict[str, list[EventRecord]] = {i: [] for i in ids}
        for chunk in _chunks(ids):
            marks = ", ".join("?" for _ in chunk)
            for deployment_id, body in self._db.execute(
                f"SELECT deployment_id, body FROM events WHERE deployment_id IN ({marks}) "
                "ORDER BY at",
                chunk,
            ):
                event = EventRecord.model_validate_json(body)
                event = event.model_copy(update={"deployment_id": deployment_id})
                found.setdefault(deployment_id, []).append(event)
        return {i: tuple(events) for i, events in found.items()}

    def _checks_seen(self, ids: Sequence[str]) -> dict[str, ChecksSeen]:
        """Each deployment's checks summed up, without reading them all."""
        seen: dict[str, ChecksSeen] = {}
        for chunk in _chunks(ids):
            marks = ", ".join("?" for _ in chunk)
            for deployment_id, service, first_at, weight, breach_at in self._db.execute(
                "SELECT deployment_id, min(service), min(at), max(canary_weight), "
                f"min(CASE WHEN rollback = 1 THEN at END) FROM checks "
                f"WHERE deployment_id IN ({marks}) GROUP BY deployment_id",
                chunk,
            ):
                seen[deployment_id] = ChecksSeen(
                    service=service,
                    first_at=_time(first_at),
                    max_weight=weight,
                    breach_at=_time(breach_at) if breach_at is not None else None,
                )
        return seen


def _chunks(ids: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _brief(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
