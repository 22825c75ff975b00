"""Benchmarks on the local stack; see docs/BENCHMARKS.md.

    python -m bench.breach_to_safety   # canary failure -> every Envoy at 0% canary, seconds
                                       # (one Envoy, a 3-Envoy fleet, in the guard)
    python -m bench.history_length     # history events of one default-plan deployment
                                       # (with the guard, every hook kind, a fleet)
    python -m bench.envoy_reads        # Envoy's latency histogram keeps up with its
                                       # counters on a busy machine

Shared here: polling, event names and the load generator's summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

STATE_ROOT = Path(__file__).resolve().parent.parent / ".state"


def load_summary(log_tail: str) -> str:
    """`N requests/s completed ... (M were 500)` from the load generator's closing line."""
    lines = [line for line in log_tail.splitlines() if line.startswith("loadgen: sent=")]
    if not lines:
        return "load not reported"
    fields = dict(part.split("=", 1) for part in lines[-1].split()[1:] if "=" in part)
    rate = int(fields["completed"]) / float(fields["elapsed"].rstrip("s"))
    return f"{rate:.0f} requests/s completed through Envoy ({fields.get('500', '0')} were 500)"


async def until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60, poll: float = 0.05
) -> None:
    """Await `check()` until it is true; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"never happened within {timeout:g} s: {what}")
        await asyncio.sleep(poll)


def say(line: str) -> None:
    """Print a line of a bench's report at once, even into a pipe."""
    print(line, flush=True)


def event_name(event: HistoryEvent) -> str:
    """`ActivityTaskScheduled`-style name of a history event's type."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def event_seconds(event: HistoryEvent) -> float:
    """The event's server timestamp as Unix seconds."""
    return event.event_time.ToNanoseconds() / 1e9
