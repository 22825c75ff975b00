"""The recorder on real stores: what activities hand it reaches the store; while the store is
down it never blocks them, buffers what fits, counts what does not, and once the store is back
keeps the buffered records and a StoreGap saying what was lost."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from activities.evidence.recorder import BATCH, Recorder
from activities.evidence.store import EvidenceStore
from sluicegate.analysis.verdict import Verdict
from sluicegate.evidence import CheckRecord, EventRecord, StoreGap, StoreUrl
from tests.tcp_relay import Relay
from tests.waiting import eventually

pytest_plugins = ["tests.postgres_fixtures"]

RUN = "6f1c2a9e-0d1b-4c55-9a43-1f3e5c7d9b01"


def _check(number: int, at: datetime) -> CheckRecord:
    return CheckRecord(
        deployment_id=RUN,
        run_id=RUN,
        service="checkout",
        stage="canary-10",
        number=number,
        at=at,
        canary_weight=10,
        status="healthy",
        rollback=False,
        stable=None,
        canary=None,
        verdict=Verdict(status="healthy", results=()),
    )


def _event(number: int, at: datetime) -> EventRecord:
    return EventRecord(
        deployment_id=RUN,
        run_id=RUN,
        service="checkout",
        kind="hook",
        at=at,
        summary=f"hook {number}",
        ident=f"activity-{number}",
    )


def _records(first: int, count: int, at: datetime) -> list[CheckRecord | EventRecord]:
    """`count` distinct records, every third an event."""
    return [
        _event(n, at) if n % 3 == 0 else _check(n, at + timedelta(milliseconds=n))
        for n in range(first, first + count)
    ]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


async def _cut(relay: Relay) -> None:
    """Cut the relay, and wait until its port refuses connections: its listener, closed while
    its thread waits in accept(), goes on listening until one more connection comes."""
    relay.cut()
    await eventually(lambda: _refused(relay.port), f"{relay.address} refusing connections")


def _kept(store: EvidenceStore) -> tuple[int, int, tuple[StoreGap, ...]]:
    found = store.evidence(RUN)
    if found is None:
        return 0, 0, ()
    return len(found.checks), len(found.events), found.gaps


def test_records_handed_over_are_kept_by_close(tmp_path: Path) -> None:
    url = StoreUrl.parse(f"sqlite:///{tmp_path}/evidence.db")
    now = datetime.now(UTC)
    records = [_event(0, now), *_records(1, 499, now)]
    recorder = Recorder(url).start()
    for record in records:
        recorder.record(record)
    recorder.close()
    assert (recorder.written, recorder.not_kept, recorder.up) == (500, 0, True)
    with EvidenceStore(url) as store:
        checks, events, gaps = _kept(store)
    assert (checks, events, gaps) == (
        sum(isinstance(r, CheckRecord) for r in records),
        sum(isinstance(r, EventRecord) for r in records),
        (),
    )


async def test_a_store_that_is_down_loses_only_what_does_not_fit(
    fresh_postgres_url: str,
) -> None:
    """A real PostgreSQL behind a relay: cut, the store is down (connections refused, the
    open one dropped); healed, it is back on the same address."""
    direct = urlsplit(fresh_postgres_url)
    relay = Relay(f"{direct.hostname}:{direct.port}")
    through_relay = direct._replace(netloc=f"{direct.username}@{relay.address}").geturl()
    recorder = Recorder(StoreUrl.parse(through_relay), capacity=50).start()
    now = datetime.now(UTC)
    try:
        with EvidenceStore.open(fresh_postgres_url) as store:
            recorder.record(*_records(0, 10, now))
            await eventually(lambda: recorder.written == 10, "the first records written")
            assert recorder.up

            await _cut(relay)  # the recorder's connection is dropped; new ones are refused
            recorder.record(*_records(10, 1, now))
            await eventually(lambda: not recorder.up, "the recorder sees the store down")

            handed = _records(11, 1000, now)
            for record in handed:  # 20 times the buffer: it never waits for room
                recorder.record(record)
            lost = recorder.not_kept
            assert lost >= len(handed) - 50 - BATCH, f"{lost} lost of {len(handed)}"
            assert _kept(store)[:2] == (6, 4)  # nothing more reached the store while it was down

            relay.heal()
            total = 10 + 1 + len(handed)
            await eventually(
                lambda: sum(_kept(store)[:2]) == total - lost and _kept(store)[2],
                "the buffered records and the gap kept once the store is back",
            )
            assert recorder.up
            assert recorder.written == total - lost
            assert recorder.not_kept == lost
            checks, events, gaps = _kept(store)
        assert len(gaps) == 1
        gap = gaps[0]
        every = _records(0, total, now)
        assert gap.checks == sum(isinstance(r, CheckRecord) for r in every) - checks
        assert gap.events == sum(isinstance(r, EventRecord) for r in every) - events
        assert gap.checks + gap.events == lost
        assert gap.deployments == (RUN,)
        assert gap.began_at <= gap.ended_at
        assert gap.error
    finally:
        recorder.close()
        await _cut(relay)
    assert recorder.not_kept == lost  # nothing left over at shutdown


async def test_closing_while_the_store_is_down_counts_each_record_once(tmp_path: Path) -> None:
    """A SQLite path that cannot be opened (a directory): nothing is kept. Closed while it
    waits to reconnect, the recorder stops and counts each record not kept once."""
    (tmp_path / "evidence.db").mkdir()
    before = set(threading.enumerate())
    recorder = Recorder(StoreUrl.parse(str(tmp_path / "evidence.db"))).start()
    ours = [t for t in set(threading.enumerate()) - before if t.name == "evidence-recorder"]
    recorder.record(*_records(0, 5, datetime.now(UTC)))
    await eventually(lambda: not recorder.up, "the recorder sees the store down")
    recorder.close(timeout=0.2)  # shorter than its first pause before reconnecting (0.5 s)
    await eventually(lambda: not any(t.is_alive() for t in ours), "the recorder stopped")
    assert (recorder.written, recorder.not_kept) == (0, 5)
