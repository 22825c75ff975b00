"""The evidence store's schema, as numbered migrations: a store is brought up to the newest
on opening, each migration once, in order, in one transaction.

SQL common to SQLite and PostgreSQL only. Times are seconds since the epoch (UTC); each row's
`body` is the record's JSON, so a record gains fields without a migration.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: checks, events, the runs of each deployment, the store's own gaps.
    (
        """CREATE TABLE checks (
            run_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            number INTEGER NOT NULL,
            deployment_id TEXT NOT NULL,
            service TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            canary_weight INTEGER NOT NULL,
            rollback INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (run_id, stage, number)
        )""",
        "CREATE INDEX checks_by_deployment ON checks (deployment_id, at)",
        "CREATE INDEX checks_by_time ON checks (at)",
        """CREATE TABLE events (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            deployment_id TEXT NOT NULL,
            service TEXT NOT NULL,
            kind TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        )""",
        "CREATE INDEX events_by_deployment ON events (deployment_id, at)",
        "CREATE INDEX events_by_service ON events (service, at)",
        "CREATE INDEX events_by_time ON events (at)",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            deployment_id TEXT NOT NULL
        )""",
        "CREATE INDEX runs_by_deployment ON runs (deployment_id)",
        """CREATE TABLE gaps (
            began_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (began_at)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
