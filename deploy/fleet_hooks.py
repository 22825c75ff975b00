"""The demo's hook programs: start and retire one version's fleet of sample services.

    python -m deploy.fleet_hooks start --state-dir=DIR --version=v2 --ports=41001,41002
                                       [--error-rate=0.05] [--delay-ms=250]
    python -m deploy.fleet_hooks retire --state-dir=DIR --version=v1 --ports=41001,41002

Each instance is `deploy.sample_service` on 127.0.0.1:<port>, in a session of its own (a
command hook's process group is killed when the hook exits), with its PID in
DIR/fleet/<version>-<port>.pid and its log in DIR/logs/. Both are idempotent, as hooks
must be: `start` leaves a running instance alone (a retried hook starts no second copy)
and exits 0 once every instance answers /healthz as its version; `retire` stops the
instances its PID files name, waits until they are gone and exits 0, also when nothing ran.
One line per instance says what was done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT = 15.0  # seconds for a started instance to answer /healthz
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Fleet:
    """One version's instances: a sample service on each port, with the same faults."""

    version: str
    ports: tuple[int, ...]
    error_rate: float = 0.0
    delay_ms: float = 0.0

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(f"127.0.0.1:{port}" for port in self.ports)

    def start_args(self) -> dict[str, str]:
        """The `start` command's arguments, as a command hook's `args`."""
        return {
            **self.retire_args(),
            "error-rate": str(self.error_rate),
            "delay-ms": str(self.delay_ms),
        }

    def retire_args(self) -> dict[str, str]:
        """The `retire` command's arguments, as a command hook's `args`."""
        return {"version": self.version, "ports": ",".join(str(port) for port in self.ports)}


def pid_file(state_dir: Path, version: str, port: int) -> Path:
    return state_dir / "fleet" / f"{version}-{port}.pid"


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # without /proc, trust kill(pid, 0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def running_pid(state_dir: Path, version: str, port: int) -> int | None:
    """The PID of the instance on `port` if its PID file names a live sample service."""
    try:
        pid = int(pid_file(state_dir, version, port).read_text())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    with contextlib.suppress(OSError):  # not ours if the PID was reused (where /proc tells)
        if b"deploy.sample_service" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return pid


def healthy_version(port: int) -> str | None:
    """The version the instance on `port` reports on /healthz, or None if none answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return str(json.loads(answer.read())["version"])
    except (OSError, ValueError, KeyError):
        return None


def start(state_dir: Path, fleet: Fleet) -> list[str]:
    """Start every instance not running yet; return once all answer. One line each."""
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    done: dict[int, str] = {}
    for port in fleet.ports:
        pid = running_pid(state_dir, fleet.version, port)
        if pid is not None:
            done[port] = f"{fleet.version} on 127.0.0.1:{port} already running (pid {pid})"
            continue
        pid = _spawn(fleet, port, log_dir / f"sample-{fleet.version}-{port}.log")
        path = pid_file(state_dir, fleet.version, port)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{pid}\n")
        faults = f", error_rate={fleet.error_rate:g}, delay_ms={fleet.delay_ms:g}"
        faults = faults if fleet.error_rate or fleet.delay_ms else ""
        done[port] = f"started {fleet.version} on 127.0.0.1:{port} (pid {pid}{faults})"
    deadline = time.monotonic() + READY_TIMEOUT
    for port in fleet.ports:
        while healthy_version(port) != fleet.version:
            if running_pid(state_dir, fleet.version, port) is None:
                raise RuntimeError(f"{fleet.version} on 127.0.0.1:{port} exited: see its log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{fleet.version} on 127.0.0.1:{port} not answering")
            time.sleep(0.05)
    return [done[port] for port in fleet.ports]


def _spawn(fleet: Fleet, port: int, log: Path) -> int:
    argv = [sys.executable, "-m", "deploy.sample_service", "--port", str(port)]
    argv += ["--version", fleet.version, "--error-rate", str(fleet.error_rate)]
    argv += ["--delay-ms", str(fleet.delay_ms)]
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the hook, whose process group is killed
            env={**os.environ, "PYTHONPATH": pythonpath},
        )
    return process.pid


def retire(state_dir: Path, fleet: Fleet) -> list[str]:
    """Stop every instance of the fleet its PID files name; one line each."""
    lines: list[str] = []
    for port in fleet.ports:
        where = f"{fleet.version} on 127.0.0.1:{port}"
        pid = running_pid(state_dir, fleet.version, port)
        if pid is None:
            lines.append(f"{where} not running")
        else:
            _stop(pid)
            lines.append(f"stopped {where} (pid {pid})")
        pid_file(state_dir, fleet.version, port).unlink(missing_ok=True)
    return lines


def _stop(pid: int) -> None:
    """SIGTERM its process group, SIGKILL it if still there after STOP_TIMEOUT."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # a session leader: its group is its PID
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return
    raise RuntimeError(f"pid {pid} survived SIGKILL")


def retire_all(state_dir: Path) -> list[str]:
    """Stop every instance any PID file under `state_dir` names (the demo's cleanup)."""
    lines: list[str] = []
    for path in sorted((state_dir / "fleet").glob("*-*.pid")):
        version, port = path.stem.rsplit("-", 1)
        lines += retire(state_dir, Fleet(version, (int(port),)))
    return lines


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"ports: comma-separated numbers, got {text!r}") from None
    if not ports or not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"ports must be 1-65535, got {text!r}")
    return ports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.fleet_hooks",
        description="Start or retire a version's sample-service instances (demo hooks).",
    )
    parser.add_argument("action", choices=("start", "retire"))
    parser.add_argument("--state-dir", type=Path, required=True, help="the demo's state dir")
    parser.add_argument("--version", required=True, help="the version label, e.g. v2")
    parser.add_argument("--ports", type=_ports, required=True, help="e.g. 41001,41002")
    parser.add_argument("--error-rate", type=float, default=0.0, help="start: 500s, 0..1")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="start: added latency")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fleet = Fleet(args.version, args.ports, args.error_rate, args.delay_ms)
    try:
        lines = (start if args.action == "start" else retire)(args.state_dir, fleet)
    except RuntimeError as err:
        print(f"{args.action} {fleet.version} failed: {err}", flush=True)
        return 1
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
