"""The evidence store on SQLite (a file of the test's own) and on a real PostgreSQL (a fresh
database of the test's own): migrations, idempotent writes, and what is read back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from activities.evidence.schema import SCHEMA_VERSION
from activities.evidence.store import EvidenceStore, StoreUnavailable
from deploy.processes import free_port
from sluicegate.analysis.verdict import MetricResult, Verdict
from sluicegate.evidence import (
    HOOK,
    ROLLBACK_VERIFIED,
    ArmNumbers,
    CheckRecord,
    EventRecord,
    StoreGap,
    StoreUrl,
)

pytest_plugins = ["tests.postgres_fixtures"]

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RUN = "6f1c2a9e-0d1b-4c55-9a43-1f3e5c7d9b01"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store: a SQLite file, or a fresh database on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "evidence" / "evidence.db")
    return str(request.getfixturevalue("fresh_postgres_url"))


def _raw(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run `statement` on the store's database itself, past the store."""
    parsed = StoreUrl.parse(url)
    if parsed.kind == "sqlite":
        with sqlite3.connect(parsed.target) as db:
            rows = db.execute(statement).fetchall()
        db.close()
        return rows
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement)  # pyright: ignore[reportArgumentType]
        return cursor.fetchall() if cursor.description else []


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _verdict(breach: bool) -> Verdict:
    status = "breach" if breach else "healthy"
    result = MetricResult(
        metric="error_rate",
        window="check",
        value=0.2 if breach else 0.0,
        bound=0.01,
        direction="max",
        requests=50,
        status=status,
    )
    return Verdict(status=status, results=(result,), rollback=breach, canary_requests=50)


def _check(
    number: int,
    at: datetime,
    *,
    run: str = RUN,
    deployment: str | None = None,
    service: str = "checkout",
    stage: str = "canary-10",
    weight: int = 10,
    breach: bool = False,
    errors: int = 0,
) -> CheckRecord:
    return CheckRecord(
        deployment_id=RUN if deployment is None else deployment,
        run_id=run,
        service=service,
        stage=stage,
        number=number,
        at=at,
        canary_weight=weight,
        status="breach" if breach else "healthy",
        rollback=breach,
        stable=ArmNumbers(requests=500, errors=1, p50_ms=5.0, p99_ms=50.0),
        canary=ArmNumbers(requests=50, errors=errors, p50_ms=5.0, p99_ms=None),
        verdict=_verdict(breach),
    )


def _event(
    kind: str,
    at: datetime,
    *,
    run: str = RUN,
    deployment: str | None = None,
    service: str = "checkout",
    weight: int | None = 0,
    **fields: Any,
) -> EventRecord:
    return EventRecord.model_validate(
        {
            "deployment_id": RUN if deployment is None else deployment,
            "run_id": run,
            "service": service,
            "kind": kind,
            "at": at,
            "canary_weight": weight,
            "summary": f"{kind} of {service}",
            "stable_version": "v1",
            "canary_version": "v2",
            **fields,
        }
    )


def _kinds(events: Sequence[EventRecord]) -> list[str]:
    return [e.kind for e in events]


# -- schema ----------------------------------------------------------------------------------


def test_a_new_store_migrates_once(store_url: str) -> None:
    with EvidenceStore.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.write([_event("started", T0)])
    # Opened again: no migration runs twice (it would fail on the tables it creates).
    with EvidenceStore.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        found = store.evidence(RUN)
        assert found is not None and _kinds(found.events) == ["started"]
    assert _raw(store_url, "SELECT version FROM sluicegate_schema") == [(SCHEMA_VERSION,)]


def test_a_store_newer_than_the_code_is_refused(store_url: str) -> None:
    with EvidenceStore.open(store_url) as store:
        store.write([_event("started", T0)])
    _raw(store_url, f"UPDATE sluicegate_schema SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="upgrade") as raised:
        EvidenceStore.open(store_url)
    assert f"schema {SCHEMA_VERSION + 1}" in str(raised.value)
    if StoreUrl.parse(store_url).kind == "postgresql":  # the refused store let its session go
        others = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        assert _raw(store_url, f"{others} AND pid <> pg_backend_pid()") == [(0,)]
    assert _raw(store_url, "SELECT version FROM sluicegate_schema") == [(SCHEMA_VERSION + 1,)]
    assert _raw(store_url, "SELECT count(*) FROM events") == [(1,)]  # nothing touched


# -- idempotent writes -----------------------------------------------------------------------


def test_a_check_written_again_replaces_itself(store_url: str) -> None:
    other_run = "7a2b3c4d-0000-4000-8000-000000000002"
    with EvidenceStore.open(store_url) as store:
        store.write([_event("started", T0), _check(1, _at(1), errors=0)])
        store.write([_check(1, _at(1.5), errors=7, breach=True)])  # a retried watcher's
        store.write([_check(1, _at(2), stage="canary-50", weight=50)])
        store.write([_check(1, _at(3), run=other_run, stage="canary-50", weight=50)])
        found = store.evidence(RUN)
    assert found is not None
    keys = [(c.run_id, c.stage, c.number) for c in found.checks]
    assert keys == [(RUN, "canary-10", 1), (RUN, "canary-50", 1), (other_run, "canary-50", 1)]
    first = found.checks[0]
    assert (first.at, first.status, first.rollback) == (_at(1.5), "breach", True)
    assert first.canary is not None and first.canary.errors == 7
    assert found.summary.detected_at is None  # still running: no rollback to detect
    assert _raw(store_url, "SELECT count(*) FROM checks") == [(3,)]


def test_an_event_written_again_is_kept_once(store_url: str) -> None:
    started = _event("started", T0)
    hook = _event(HOOK, _at(1), deployment="", ident="activity-7")
    with EvidenceStore.open(store_url) as store:
        store.write([started, hook])
        store.write([started])  # a retried notify
        store.write([hook.model_copy(update={"at": _at(2), "summary": "pre_rollout passed"})])
        store.write([_event("stage", _at(3), summary="stage 1")])
        store.write([_event("stage", _at(3), summary="stage 2")])  # not the same event
        found = store.evidence(RUN)
    assert found is not None
    assert _kinds(found.events) == ["started", HOOK, "stage", "stage"]
    assert (found.events[1].at, found.events[1].summary) == (_at(2), "pre_rollout passed")
    assert _raw(store_url, "SELECT count(*) FROM events") == [(4,)]


def test_events_of_an_unknown_run_get_their_deployment_later(store_url: str) -> None:
    hook = _event(HOOK, _at(1), deployment="", ident="activity-3")
    verified = _event(ROLLBACK_VERIFIED, _at(2), deployment="", service="", ident="activity-9")
    with EvidenceStore.open(store_url) as store:
        store.write([hook])
        store.write([verified])
        assert store.evidence(RUN) is None
        assert store.latest("checkout") is None
        assert store.summaries(T0 - timedelta(days=1)) == []
        store.write([_event("started", T0)])  # the first record that names the deployment
        found = store.evidence(RUN)
        assert found is not None
        assert _kinds(found.events) == ["started", HOOK, ROLLBACK_VERIFIED]
        assert {e.deployment_id for e in found.events} == {RUN}
        # Once the run is known, an event without its deployment gets it at once.
        store.write([_event(HOOK, _at(3), deployment="", ident="activity-4")])
        found = store.evidence(RUN)
        assert found is not None and len(found.events) == 4
        assert store.latest("checkout") == RUN
    assert _raw(store_url, "SELECT count(*) FROM events WHERE deployment_id = ''") == [(0,)]


def test_a_check_maps_the_run_of_earlier_events(store_url: str) -> None:
    later_run = "7a2b3c4d-0000-4000-8000-000000000002"  # continued as new
    with EvidenceStore.open(store_url) as store:
        store.write([_event("started", T0), _check(1, _at(1))])
        store.write([_event(HOOK, _at(5), run=later_run, deployment="", ident="a-1")])
        found = store.evidence(RUN)
        assert found is not None and _kinds(found.events) == ["started"]
        store.write([_check(1, _at(6), run=later_run, stage="canary-50", weight=50)])
        found = store.evidence(RUN)
    assert found is not None
    assert _kinds(found.events) == ["started", HOOK]
    assert [c.run_id for c in found.checks] == [RUN, later_run]


# -- reading ---------------------------------------------------------------------------------


def test_the_evidence_of_a_rolled_back_deployment(store_url: str) -> None:
    gap_during = StoreGap(
        began_at=_at(1.5), ended_at=_at(2.5), checks=1, events=0, error="connection refused"
    )
    gap_before = StoreGap(
        began_at=_at(-60), ended_at=_at(-50), checks=3, events=1, error="disk full"
    )
    gap_after = StoreGap(began_at=_at(60), ended_at=_at(70), checks=0, events=2, error="down")
    records = [
        _check(4, _at(4), breach=True, errors=9),  # written first, read in time order
        _event("rolled_back", _at(6), summary="error_rate breached"),
        _event(ROLLBACK_VERIFIED, _at(5), deployment="", service="", ident="act-11"),
        _check(2, _at(2)),
        _event("stage", _at(0.5), weight=10),
        _check(1, _at(1)),
        _event("started", T0),
        gap_after,
        gap_during,
        gap_before,
    ]
    with EvidenceStore.open(store_url) as store:
        store.write(records[:3])
        store.write(records[3:])
        found = store.evidence(RUN)
        assert store.evidence("no-such-deployment") is None
    assert found is not None
    assert [c.number for c in found.checks] == [1, 2, 4]
    assert [c.at for c in found.checks] == [_at(1), _at(2), _at(4)]
    assert _kinds(found.events) == ["started", "stage", ROLLBACK_VERIFIED, "rolled_back"]
    assert found.breach is not None and found.breach.number == 4
    summary = found.summary
    assert summary.deployment_id == RUN
    assert (summary.service, summary.stable_version, summary.canary_version) == (
        "checkout",
        "v1",
        "v2",
    )
    assert summary.outcome == "rolled_back"
    assert summary.reason == "error_rate breached"
    assert summary.moved_traffic
    assert (summary.started_at, summary.ended_at) == (T0, _at(6))
    assert summary.detected_at == _at(4)
    assert summary.restored_at == _at(5)
    assert summary.time_to_restore == timedelta(minutes=1)
    assert found.gaps == (gap_during,)
    assert found.missing_checks() == ("stage canary-10: checks 3 not kept",)


def test_summaries_latest_and_find(store_url: str) -> None:
    first = "aaaa1111-0000-4000-8000-000000000001"
    second = "aaaa2222-0000-4000-8000-000000000002"
    other = "bbbb3333-0000-4000-8000-000000000003"
    day = timedelta(days=1)
    with EvidenceStore.open(store_url) as store:
        store.write(
            [
                _event("started", T0, run=first, deployment=first),
                _check(1, _at(1), run=first, deployment=first, weight=50),
                _event("promoted", _at(10), run=first, deployment=first, weight=100),
                _event("started", T0 + 2 * day, run=second, deployment=second),
                _check(1, T0 + 2 * day + timedelta(minutes=1), run=second, deployment=second),
                _event("started", T0 + day, run=other, deployment=other, service="search"),
                _event("not_started", _at(1) + day, run=other, deployment=other, service="search"),
            ]
        )
        every = store.summaries(T0 - day)
        assert [(s.deployment_id, s.outcome) for s in every] == [
            (first, "promoted"),
            (other, "not_started"),
            (second, "running"),
        ]
        assert every[0].ended_at == _at(10) and every[0].moved_traffic
        assert not every[1].moved_traffic
        checkout = store.summaries(T0 - day, "checkout")
        assert [s.deployment_id for s in checkout] == [first, second]
        assert [s.deployment_id for s in store.summaries(T0 + day + timedelta(hours=1))] == [second]
        assert store.summaries(T0 + 3 * day) == []

        assert store.latest("checkout") == second
        assert store.latest("search") == other
        assert store.latest("billing") is None

        assert store.find("checkout", "aaaa1") == first
        assert store.find("checkout", second) == second
        assert store.find("search", "bbbb") == other
        assert store.find("search", "aaaa1") is None  # another service's
        assert store.find("checkout", "cccc") is None
        with pytest.raises(LookupError, match="more than one deployment") as raised:
            store.find("checkout", "aaaa")
        assert first in str(raised.value) and second in str(raised.value)


def test_purge_forgets_what_is_older(store_url: str) -> None:
    old = "0ld00000-0000-4000-8000-000000000001"
    old_at = T0 - timedelta(days=40)
    with EvidenceStore.open(store_url) as store:
        store.write(
            [
                _event("started", old_at, run=old, deployment=old),
                _check(1, old_at + timedelta(minutes=1), run=old, deployment=old),
                _event("promoted", old_at + timedelta(minutes=2), run=old, deployment=old),
                StoreGap(began_at=old_at, ended_at=old_at, checks=1, events=0, error="down"),
                _event("started", T0),
                _check(1, _at(1)),
                StoreGap(began_at=_at(1), ended_at=_at(2), checks=1, events=0, error="down"),
            ]
        )
        assert store.purge(T0 - timedelta(days=30)) == 4
        assert store.evidence(old) is None
        assert store.find("checkout", old) is None
        kept = store.evidence(RUN)
        assert kept is not None
        assert (len(kept.events), len(kept.checks), len(kept.gaps)) == (1, 1, 1)
        assert store.purge(T0 - timedelta(days=30)) == 0
    assert _raw(store_url, "SELECT run_id FROM runs") == [(RUN,)]


def test_deployments_of_two_services_and_a_continued_run(store_url: str) -> None:
    later_run = "7a2b3c4d-0000-4000-8000-000000000002"  # continued as new: same deployment
    search = "5ea4c400-0000-4000-8000-000000000003"
    with EvidenceStore.open(store_url) as store:
        store.write(
            [
                _event("started", T0, committed_at=T0 - timedelta(hours=1)),
                _check(1, _at(1)),
                _check(2, _at(2)),
                _event("started", _at(0.5), run=search, deployment=search, service="search"),
                _check(1, _at(1.5), run=search, deployment=search, service="search"),
            ]
        )
        store.write(
            [
                _check(1, _at(3), run=later_run, stage="canary-50", weight=50),
                _check(2, _at(4), run=later_run, stage="canary-50", weight=50),
                _event("promoted", _at(5), run=later_run, weight=100),
                _event("rolled_back", _at(6), run=search, deployment=search, service="search"),
            ]
        )
        summaries = store.summaries(T0 - timedelta(days=1))
        found = store.evidence(RUN)
        assert store.find("checkout", "7a2b") == RUN  # a later run names its deployment
    assert [(s.deployment_id, s.service, s.outcome) for s in summaries] == [
        (RUN, "checkout", "promoted"),
        (search, "search", "rolled_back"),
    ]
    checkout = summaries[0]
    assert (checkout.started_at, checkout.ended_at) == (T0, _at(5))
    assert checkout.lead_time == timedelta(hours=1, minutes=5)
    assert found is not None
    assert [(c.run_id, c.number) for c in found.checks] == [
        (RUN, 1),
        (RUN, 2),
        (later_run, 1),
        (later_run, 2),
    ]
    assert _kinds(found.events) == ["started", "promoted"]
    assert found.missing_checks() == ()  # each run counts its checks afresh
    assert found.summary == checkout


def test_an_unreachable_postgresql_is_unavailable() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://sluice:s3cret@127.0.0.1:{port}/evidence"
    with pytest.raises(StoreUnavailable) as raised:
        EvidenceStore.open(url)
    message = str(raised.value)
    assert f"postgresql://sluice@127.0.0.1:{port}/evidence" in message
    assert "s3cret" not in message
