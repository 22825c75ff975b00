"""The recorder: activities hand it records and go on at once; its own thread writes them to
the store. A store that is slow or down never slows or stops a deployment: records wait in
a bounded buffer while the store is away, and what did not fit is counted, then kept as a
`StoreGap` once the store is back, so the report says what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from activities.evidence.store import EvidenceStore, Record, StoreUnavailable
from sluicegate.evidence import OUTCOMES, CheckRecord, EventRecord, StoreGap, StoreUrl

CAPACITY = 10_000  # records buffered while the store is away (about 30 MB at most)
BATCH = 200  # records per transaction
FIRST_PAUSE_S = 0.5  # before reconnecting; doubles up to MAX_PAUSE_S
MAX_PAUSE_S = 15.0
PURGE_EVERY_S = 3600.0
logger = logging.getLogger(__name__)


@dataclass
class _Outage:
    """What happened while the store was away."""

    began_at: datetime
    error: str
    checks: int = 0
    events: int = 0
    deployments: set[str] = field(default_factory=set[str])

    def lose(self, record: Record) -> None:
        if isinstance(record, CheckRecord):
            self.checks += 1
        elif not isinstance(record, StoreGap):
            self.events += 1
        if not isinstance(record, StoreGap) and record.deployment_id:
            self.deployments.add(record.deployment_id)

    def gap(self, ended_at: datetime) -> StoreGap:
        return StoreGap(
            began_at=self.began_at,
            ended_at=ended_at,
            checks=self.checks,
            events=self.events,
            error=self.error,
            deployments=tuple(sorted(self.deployments)),
        )


class Recorder:
    """Writes records to the store at `url` from a thread of its own."""

    def __init__(
        self, url: StoreUrl, retention: timedelta | None = None, capacity: int = CAPACITY
    ) -> None:
        self.url = url
        self.retention = retention
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=capacity)  # None: stop
        self._lock = threading.Lock()
        self._outage: _Outage | None = None
        self._thread = threading.Thread(target=self._run, name="evidence-recorder", daemon=True)
        self._stopping = False
        self._wake = threading.Event()  # set by close(): no more pausing to reconnect
        self.written = 0  # records kept, for the worker's metrics
        self.outcomes = 0  # deployments' outcomes kept: the DORA figures have changed
        self.not_kept = 0  # records lost (buffer full, or left at shutdown)
        self.up = True

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def record(self, *records: Record) -> None:
        """Queue `records` for the store; never waits. A full buffer loses them, counted."""
        for record in records:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self._lose(record, "the buffer is full: the store is down or too slow")

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop."""
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        left = self._drop_queued()
        if left:
            logger.error(
                "evidence store %s: %d records not kept at shutdown", self.url.describe(), left
            )

    def _drop_queued(self) -> int:
        """Lose what is still queued: each record once, whichever thread takes it; how many."""
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if item is not None:
                self._lose(item, "the worker stopped before the store was back")
                dropped += 1

    def _lose(self, record: Record, why: str) -> None:
        with self._lock:
            if self._outage is None:
                self._outage = _Outage(began_at=datetime.now(UTC), error=why)
            self._outage.lose(record)
            self.not_kept += 1

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        store: EvidenceStore | None = None
        pause = FIRST_PAUSE_S
        purged_at = 0.0
        pending: list[Record] = []
        while True:
            done = self._take(pending)
            if not pending and done:
                break
            gap = self._gap_to_keep()
            if not pending and gap is None:
                continue  # nothing to write yet
            try:
                store = store or EvidenceStore(self.url)
                store.write([*pending, *([gap] if gap else [])])
                self.written += len(pending)
                self.outcomes += sum(
                    1 for r in pending if isinstance(r, EventRecord) and r.kind in OUTCOMES
                )
                pending.clear()
                self._back_up(store, gap)
                pause = FIRST_PAUSE_S
                if self.retention and time.monotonic() - purged_at > PURGE_EVERY_S:
                    purged_at = time.monotonic()
                    store.purge(datetime.now(UTC) - self.retention)
            except (StoreUnavailable, sqlite3.Error, psycopg.Error, OSError) as err:
                self._down(store, err)
                store = None
                if done or self._stopping:
                    break
                self._wake.wait(pause)
                pause = min(pause * 2, MAX_PAUSE_S)
        if store is not None:
            store.close()
        for record in pending:
            self._lose(record, "the worker stopped before the store was back")

    def _take(self, pending: list[Record]) -> bool:
        """Fill `pending` up to a batch from the queue (waiting a little for the first);
        True once the recorder is to stop."""
        wait = 0.0 if pending else 0.5
        while len(pending) < BATCH:
            try:
                item = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
            except queue.Empty:
                return self._stopping and self._queue.empty()
            if item is None:
                return True
            pending.append(item)
            wait = 0.0
        return False

    def _gap_to_keep(self) -> StoreGap | None:
        with self._lock:
            return self._outage.gap(datetime.now(UTC)) if self._outage is not None else None

    def _back_up(self, store: EvidenceStore, kept: StoreGap | None) -> None:
        """The store took the gap with the records: the outage is over, unless more was lost
        meanwhile (then the gap is written again, counting it, with the next batch)."""
        with self._lock:
            outage = self._outage
            if outage is not None and kept is not None and outage.gap(kept.ended_at) == kept:
                self._outage = None
        if not self.up:
            self.up = True
            lost = f", {outage.checks} checks and {outage.events} events lost" if outage else ""
            logger.warning("evidence store %s is back%s", store.url.describe(), lost)

    def _down(self, store: EvidenceStore | None, err: Exception) -> None:
        if store is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                store.close()
        reason = " ".join(str(err).split()) or type(err).__name__
        with self._lock:
            if self._outage is None:
                self._outage = _Outage(began_at=datetime.now(UTC), error=reason)
        if self.up:
            self.up = False
            logger.warning(
                "evidence store %s unavailable (%s): deployments go on; records wait in a "
                "buffer of %d",
                self.url.describe(),
                reason,
                self._queue.maxsize,
            )


_recorder: Recorder | None = None


def use_recorder(recorder: Recorder | None) -> None:
    """The recorder this process's activities write to (None: they keep nothing)."""
    global _recorder
    _recorder = recorder


def record(*records: Record) -> None:
    """Hand `records` to this process's recorder, if it has one; never waits, never raises."""
    if _recorder is not None:
        try:
            _recorder.record(*records)
        except Exception:  # evidence must never fail an activity
            logger.exception("could not hand records to the evidence recorder")
