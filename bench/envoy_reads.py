"""Envoy reads under load: does each window's latency histogram keep up with its counters?

    python -m bench.envoy_reads [--windows 300] [--every 0.2] [--rps 300] [--busy 2]

A real Envoy with v1 behind it and steady load, `--busy` processes spinning on the CPU
meanwhile. The product's Envoy source (`EnvoyStatsSource.collect`) reads every `--every`
seconds; for each window between two reads, the requests the counters saw are compared
with the requests the latency histogram saw. A read served before Envoy merged its
histograms shows the histogram trailing by a whole window (docs/metrics/envoy.md).
Target: no window whose histogram saw fewer than half of the requests its counters saw.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from activities.metrics.envoy import EnvoyStatsSource
from bench import say
from deploy.stack import LocalStack, Site
from sluicegate.analysis.samples import ArmCounters
from sluicegate.spec import EnvoyStats

SPIN = "while True: pass"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.envoy_reads", description=__doc__)
    parser.add_argument("--windows", type=int, default=300, help="windows to compare")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between reads")
    parser.add_argument("--rps", type=float, default=300, help="load through Envoy")
    parser.add_argument("--busy", type=int, default=2, help="CPU-spinning processes meanwhile")
    return parser.parse_args(argv)


def _stable(arm: ArmCounters | None) -> ArmCounters:
    return arm if arm is not None else ArmCounters(requests=0, errors=0)


async def run(args: argparse.Namespace) -> int:
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="sluicegate-envoy-reads-")))
    spinners: list[subprocess.Popen[bytes]] = []
    try:
        site = Site(stack, "reads", rps=args.rps)
        spec = site.spec().analysis.source
        assert isinstance(spec, EnvoyStats)
        source = EnvoyStatsSource(spec)
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
        await asyncio.sleep(2)  # the load generator reaches its rate
        before = _stable((await source.collect()).stable)
        behind: list[tuple[int, int]] = []
        widest = 0
        for _ in range(args.windows):
            await asyncio.sleep(args.every)
            now = _stable((await source.collect()).stable)
            requests, timed = now.requests - before.requests, now.timed - before.timed
            widest = max(widest, abs(requests - timed))
            if timed < requests / 2:
                behind.append((requests, timed))
            before = now
        say(
            f"{len(behind)} of {args.windows} windows ({args.every:g} s, {args.rps:g} "
            f"requests/s, {args.busy} busy processes) had a histogram behind by half or more"
            + "".join(f"; {r} requests, {t} in the histogram" for r, t in behind[:10])
        )
        say(f"otherwise histogram and counters differed by {widest} requests at most")
        return 1 if behind else 0
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        stack.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
