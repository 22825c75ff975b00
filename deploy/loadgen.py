"""Steady HTTP load against a loopback URL, for the demo and end-to-end tests.

    python -m deploy.loadgen --url http://127.0.0.1:10000/ --rps 100 [--duration 60]

Sends `rps` GETs a second (at most `--concurrency` in flight) until `--duration` ends or
SIGTERM/SIGINT arrives, then prints one summary line: `loadgen: sent=N ... 200=N 500=N`.
Refuses any URL whose host is not loopback (127.0.0.0/8, localhost, ::1).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from deploy.arguments import number_in
from deploy.processes import Process, start_module, wait_until

MAX_DURATION_S = 3600.0
MAX_RPS = 2000.0
STARTED = "loadgen: started"


def loopback_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL on a loopback host, or None if it is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"URL must start with http:// or https://, got {url!r}"
    host = parts.hostname
    if host is None:
        return f"URL has no host: {url!r}"
    if host == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (
        address in ipaddress.ip_network("127.0.0.0/8") or address == ipaddress.ip_address("::1")
    ):
        return None
    return (
        f"refusing non-loopback URL {url!r}: host {host!r} is not in 127.0.0.0/8, "
        "localhost or ::1 (the load generator only targets this machine)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.loadgen",
        description="Send steady GET load to a loopback URL; print a summary line at exit.",
    )
    parser.add_argument(
        "--url", required=True, help="Target URL; its host must be 127.0.0.0/8, localhost or ::1."
    )
    parser.add_argument(
        "--rps",
        type=number_in(float, 0, MAX_RPS, low_inclusive=False),
        required=True,
        help=f"Requests per second to send (0 < rps <= {MAX_RPS:g}).",
    )
    parser.add_argument(
        "--duration",
        type=number_in(float, 0, MAX_DURATION_S, low_inclusive=False),
        default=MAX_DURATION_S,
        help=f"Seconds to run before exiting (max and default {MAX_DURATION_S:g}); "
        "SIGTERM or SIGINT stops earlier.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="Most requests in flight at once; when all are busy the rate drops. Default 64.",
    )
    parser.add_argument(
        "--timeout",
        type=number_in(float, 0, 60, low_inclusive=False),
        default=5.0,
        help="Per-request timeout in seconds (max 60). Default 5.",
    )
    return parser


class LoadGenerator:
    """Sends GETs at a steady rate and counts outcomes by status code or error type."""

    def __init__(self, url: str, rps: float, concurrency: int, timeout: float) -> None:
        self.url = url
        self.interval = 1.0 / rps
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        self.timeout = timeout
        self.sent = 0
        self.outcomes: Counter[str] = Counter()
        self.stopping = asyncio.Event()

    async def run(self, duration: float) -> float:
        """Send until `duration` passes or `stopping` is set; returns the elapsed seconds."""
        began = time.monotonic()
        deadline = began + duration
        max_requests = int(duration / self.interval) + 1
        in_flight: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            next_at = began
            while self.sent < max_requests and not self.stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                if next_at > now:
                    await asyncio.sleep(min(next_at, deadline) - now)  # stop is checked above
                    continue
                await self.slots.acquire()
                self.sent += 1
                task = asyncio.create_task(self.one_request(client))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                # Keep a steady pace: after a stall, do not burst to catch up.
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.timeout + 1)
            for task in list(in_flight):
                task.cancel()
        return time.monotonic() - began

    async def one_request(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.get(self.url)
            self.outcomes[str(response.status_code)] += 1
        except httpx.HTTPError as err:
            self.outcomes[f"error:{type(err).__name__}"] += 1
        finally:
            self.slots.release()

    def summary(self, elapsed: float) -> str:
        counts = " ".join(f"{key}={n}" for key, n in sorted(self.outcomes.items()))
        done = sum(self.outcomes.values())
        return (
            f"loadgen: sent={self.sent} completed={done} elapsed={elapsed:.1f}s "
            f"{counts or 'no responses'}"
        )


async def run(args: argparse.Namespace) -> None:
    generator = LoadGenerator(args.url, args.rps, args.concurrency, args.timeout)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, generator.stopping.set)
    print(f"{STARTED} url={args.url} rps={args.rps:g} duration={args.duration:g}s", flush=True)
    elapsed = await generator.run(args.duration)
    print(generator.summary(elapsed), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = loopback_problem(args.url)
    if problem:
        parser.error(f"argument --url: {problem}")
    if args.concurrency < 1:
        parser.error("argument --concurrency: must be at least 1")
    asyncio.run(run(args))


def start_loadgen(url: str, rps: float, log_dir: Path, duration: float = MAX_DURATION_S) -> Process:
    """Start the load generator as a child process; returns once it has begun sending."""
    problem = loopback_problem(url)
    if problem:
        raise ValueError(problem)
    log = log_dir / "loadgen.log"
    offset = log.stat().st_size if log.exists() else 0
    args = [
        "--url",
        url,
        "--rps",
        str(rps),
        "--duration",
        str(duration),
    ]
    process = start_module("loadgen", "deploy.loadgen", args, log_dir)

    def started() -> bool:
        with log.open("rb") as f:
            f.seek(offset)
            return STARTED.encode() in f.read()

    try:
        wait_until(started, process, timeout=15)
    except BaseException:
        process.stop()
        raise
    return process


if __name__ == "__main__":
    main()
