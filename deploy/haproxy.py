"""HAProxy for tests and the demo: write a config Sluicegate can steer, start and stop it.

One frontend in front of one backend with the servers `stable` (weight 100) and `canary`
(weight 0), an admin-level stats socket (unix, optionally TCP too) for the runtime API and
a second frontend serving the Prometheus exporter. With `slots` above 1 each arm is that
many server slots (stable1, stable2, ...: the first at the given endpoints, the rest from a
`server-template` in maintenance) for versions with several endpoints.
See docs/routers/haproxy.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.processes import Process, port_open, start, wait_until

BACKEND = "service"
_SBIN = Path("/usr/sbin/haproxy")  # Debian's path, often missing from a user's PATH
INSTALL_HINT = "install it with `apt-get install -y haproxy` (or run `make test` as root)"


def haproxy_binary() -> str | None:
    """Path of the haproxy binary, or None when it is not installed."""
    found = shutil.which("haproxy")
    if found:
        return found
    return str(_SBIN) if _SBIN.exists() else None


def config(
    listen_port: int,
    metrics_port: int,
    socket: Path,
    stable: str | Sequence[str],
    canary: str | Sequence[str],
    runtime_port: int | None = None,
    balance: str = "roundrobin",
    slots: int = 1,
) -> str:
    """haproxy.cfg: all traffic to `stable` until the canary's weight is raised.

    `balance` must be a dynamic algorithm for weights to change at run time (roundrobin,
    leastconn, random); `static-rr` is there for tests of the refusal. `slots` 1 writes one
    server per arm, named `stable` and `canary`; more write that many per arm.
    """
    tcp_api = (
        f"    stats socket ipv4@127.0.0.1:{runtime_port} level admin\n" if runtime_port else ""
    )
    return f"""\
global
    stats socket {socket} mode 600 level admin
{tcp_api}
# A dead upstream turns into a quick 503: HAProxy waits min(timeout connect, 1 s) before
# each retry, so the defaults (3 retries) would hold every such request for seconds.
defaults
    mode http
    retries 1
    timeout connect 250ms
    timeout client 30s
    timeout server 30s

frontend web
    bind 127.0.0.1:{listen_port}
    default_backend {BACKEND}

frontend metrics
    bind 127.0.0.1:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    no log

# No `option redispatch`: a request the canary refuses is the canary's error, not stable's.
backend {BACKEND}
    balance {balance}
{servers("stable", stable, 100, slots)}{servers("canary", canary, 0, slots)}"""


def servers(arm: str, endpoints: str | Sequence[str], weight: int, slots: int = 1) -> str:
    """An arm's server lines: one server named `arm`, or `slots` slots named arm1, arm2, ...

    The first slots serve `endpoints` at `weight`; a `server-template` makes the rest, in
    maintenance (`disabled`) at the first endpoint's address, until Sluicegate uses them.
    """
    endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    if not 1 <= len(endpoints) <= slots:
        raise ValueError(f"{len(endpoints)} {arm} endpoint(s) for {slots} slot(s)")
    if slots == 1:
        return f"    server {arm} {endpoints[0]} weight {weight}\n"
    lines = [f"    server {arm}{i} {e} weight {weight}\n" for i, e in enumerate(endpoints, 1)]
    if len(endpoints) < slots:
        first, spare = len(endpoints) + 1, f"{endpoints[0]} weight 0 disabled"
        lines.append(f"    server-template {arm} {first}-{slots} {spare}\n")
    return "".join(lines)


def start_haproxy(
    config_file: Path, listen_port: int, metrics_port: int, socket: Path, log_dir: Path
) -> Process:
    """Start haproxy in the foreground on `config_file`; wait for its ports and socket."""
    binary = haproxy_binary()
    if binary is None:
        raise FileNotFoundError(f"haproxy is not installed: {INSTALL_HINT}")
    process = start(f"haproxy-{listen_port}", [binary, "-db", "-f", str(config_file)], log_dir)
    try:
        wait_until(port_open(listen_port), process, timeout=15)
        wait_until(port_open(metrics_port), process, timeout=5)
        wait_until(_exists(socket), process, timeout=5)
    except BaseException:
        process.stop()
        raise
    return process


def _exists(path: Path) -> Callable[[], bool]:
    return path.exists


@dataclass
class HAProxy:
    """One HAProxy, its config directory and its stats socket directory.

    Unix socket paths are limited to about 100 bytes, so `socket_dir` should be short
    (a `tempfile.mkdtemp()` in /tmp), not a deep test directory.
    """

    directory: Path
    socket_dir: Path
    listen_port: int
    metrics_port: int
    log_dir: Path
    runtime_port: int | None = None
    balance: str = "roundrobin"
    slots: int = 1  # server slots per arm: 1 is the servers `stable` and `canary`
    process: Process | None = None

    @property
    def socket(self) -> Path:
        return self.socket_dir / "admin.sock"

    @property
    def tcp_runtime_api(self) -> str:
        if self.runtime_port is None:
            raise ValueError("this HAProxy was configured without a TCP runtime API")
        return f"127.0.0.1:{self.runtime_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}/"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def config_file(self) -> Path:
        return self.directory / "haproxy.cfg"

    def start(self, stable: str | Sequence[str], canary: str | Sequence[str]) -> None:
        """Write the config (stable gets everything, canary weight 0) and start HAProxy."""
        self.directory.mkdir(parents=True, exist_ok=True)
        text = config(
            self.listen_port,
            self.metrics_port,
            self.socket,
            stable,
            canary,
            self.runtime_port,
            self.balance,
            self.slots,
        )
        self.config_file.write_text(text)
        self.process = start_haproxy(
            self.config_file, self.listen_port, self.metrics_port, self.socket, self.log_dir
        )

    def restart(self) -> None:
        """Stop and start on the same config: runtime API changes are lost, as in a crash."""
        self.stop()
        self.process = start_haproxy(
            self.config_file, self.listen_port, self.metrics_port, self.socket, self.log_dir
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
