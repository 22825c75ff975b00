"""The evidence store measured with the product's own recorder, store and report page:

1. what a check costs the watcher: `record()` per call, with the store up and with it
   down (a PostgreSQL URL where nothing listens): it must stay microseconds either way;
2. how many checks a second the recorder keeps (SQLite, and PostgreSQL with --postgres-url),
   against the 100 a second of 1,000 deployments checked every 10 s;
3. one day of a deployment (8,640 checks at 10 s): reading it back and drawing its page;
4. DORA figures over a month of 5,000 deployments.

    .venv/bin/python -m bench.evidence_store [--postgres-url postgresql://...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.evidence.recorder import Recorder
from activities.evidence.store import EvidenceStore
from bench.scripted import make_spec
from deploy.processes import free_port
from frontends.client.report import report_page
from sluicegate.analysis import judge_check, start_stage
from sluicegate.analysis.samples import ArmCounters, Sample
from sluicegate.evidence import CheckRecord, EventRecord, StoreUrl, check_numbers, dora

BUCKETS = (25.0, 50.0, 100.0, 200.0, 400.0, float("inf"))
POLICY = make_spec("bench").analysis


def _arm(requests: int, errors: int) -> ArmCounters:
    shares = (0.3, 0.7, 0.95, 0.995, 0.999, 1.0)
    return ArmCounters(
        requests=requests,
        errors=errors,
        latency_buckets=tuple((b, int(requests * s)) for b, s in zip(BUCKETS, shares, strict=True)),
    )


def checks(deployment_id: str, count: int, start: datetime) -> Iterator[CheckRecord]:
    """`count` checks of one deployment at 5% of 300 requests/s, judged by the real judge."""
    previous = Sample(at=start, stable=_arm(0, 0), canary=_arm(0, 0))
    state = start_stage(previous, POLICY)
    for number in range(1, count + 1):
        stable, canary = 2850 * number, 150 * number
        current = Sample(
            at=start + timedelta(seconds=10 * number),
            stable=_arm(stable, stable // 1000),
            canary=_arm(canary, canary // 1000),
        )
        state, verdict = judge_check(state, previous, current, POLICY)
        stable_numbers, canary_numbers = check_numbers(previous, current)
        yield CheckRecord(
            deployment_id=deployment_id,
            run_id=deployment_id,
            service="bench",
            stage="canary",
            number=number,
            at=current.at,
            canary_weight=5,
            status=verdict.status,
            rollback=verdict.rollback,
            stable=stable_numbers,
            canary=canary_numbers,
            verdict=verdict,
        )
        previous = current


def record_cost(url: StoreUrl, calls: int) -> tuple[float, float, float, int]:
    """p50, p99 and max µs of `record()`, and the records not kept, against `url`."""
    records = list(checks("cost", 200, datetime.now(UTC)))
    recorder = Recorder(url, capacity=calls + 1).start()  # a burst: nothing lost to overflow
    took: list[float] = []
    for index in range(calls):
        started = time.perf_counter()
        recorder.record(records[index % len(records)])
        took.append((time.perf_counter() - started) * 1e6)
    recorder.close(timeout=30)
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99)], took[-1], recorder.not_kept


def write_rate(url: StoreUrl, count: int) -> float:
    """Checks kept per second by the recorder, from the first handed over to the last kept."""
    records = [c for d in range(count // 100) for c in checks(f"w{d}", 100, datetime.now(UTC))]
    recorder = Recorder(url, capacity=len(records) + 1).start()
    started = time.perf_counter()
    recorder.record(*records)
    recorder.close(timeout=600)
    seconds = time.perf_counter() - started
    assert recorder.written == len(records), (recorder.written, len(records))
    return len(records) / seconds


def day_report(url: StoreUrl) -> tuple[float, float, int]:
    """Seconds to read one day of checks back, to draw its page, and the page's bytes."""
    deployment_id = f"day-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(days=1)
    with EvidenceStore(url) as store:
        day = list(checks(deployment_id, 8640, start))
        for offset in range(0, len(day), 1000):
            store.write(day[offset : offset + 1000])
        started = time.perf_counter()
        evidence = store.evidence(deployment_id)
        read = time.perf_counter() - started
    assert evidence is not None and len(evidence.checks) == 8640
    started = time.perf_counter()
    page = report_page(evidence)
    return read, time.perf_counter() - started, len(page.encode())


def month_of_dora(url: StoreUrl, deployments: int) -> float:
    """Seconds for the DORA figures of a month of `deployments`."""
    now = datetime.now(UTC)
    with EvidenceStore(url) as store:
        batch: list[EventRecord | CheckRecord] = []
        for index in range(deployments):
            at = now - timedelta(days=30) * index / deployments
            run = f"m{index}"
            outcome = "rolled_back" if index % 10 == 0 else "promoted"
            batch += [
                EventRecord(deployment_id=run, run_id=run, service=f"s{index % 40}", kind=kind,
                            at=at + timedelta(minutes=minutes), canary_weight=weight)
                for kind, minutes, weight in (("started", 0, 0), ("stage_advanced", 1, 5),
                                              (outcome, 90, 0))
            ]  # fmt: skip
            if len(batch) > 3000:
                store.write(batch)
                batch = []
        store.write(batch)
        started = time.perf_counter()
        summaries = store.summaries(now - timedelta(days=30))
        figures = dora(summaries, now - timedelta(days=30), now)
    assert figures.deployments >= deployments * 0.99, figures
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", help="also measure this PostgreSQL database")
    parser.add_argument("--calls", type=int, default=20_000, help="record() calls timed")
    parser.add_argument("--checks", type=int, default=20_000, help="checks written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        stores = {"SQLite": StoreUrl.parse(str(Path(directory) / "evidence.db"))}
        if args.postgres_url:
            stores["PostgreSQL"] = StoreUrl.parse(args.postgres_url)
        down = StoreUrl.parse(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
        for name, url in {**stores, "a store that is down": down}.items():
            p50, p99, most, lost = record_cost(url, args.calls)
            print(
                f"record() with {name}: p50 {p50:.1f} µs, p99 {p99:.1f} µs, max {most:.0f} µs "
                f"over {args.calls:,} calls; {lost:,} not kept"
            )
        for name, url in stores.items():
            rate = write_rate(url, args.checks)
            print(f"{name}: {rate:,.0f} checks kept per second ({args.checks:,} checks)")
            read, drawn, size = day_report(url)
            print(
                f"{name}: a day of checks (8,640) read back in {read:.2f} s, its page drawn "
                f"in {drawn:.2f} s, {size / 1e6:.1f} MB"
            )
            dora_s = month_of_dora(url, 5000)
            print(f"{name}: DORA over a month of 5,000 deployments in {dora_s:.2f} s")


if __name__ == "__main__":
    main()
