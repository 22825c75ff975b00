"""nginx for tests and the demo: a main config Sluicegate can steer, started and stopped by PID.

The main config runs an unprivileged nginx whose every path (pid file, error log, temp
directories) is in one directory, `include`s the upstream file Sluicegate owns and proxies
to that upstream. See docs/routers/nginx.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from activities.routers.nginx import render_upstream, workers_of
from deploy.processes import Process, port_open, start, wait_until
from sluicegate.contracts import RouterState

INSTALL_HINT = "apt-get install -y nginx-light (or run `make test` as root)"
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str | None:
    """The nginx binary on PATH or in the sbin directories, or None if not installed."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which("nginx", path=path)


def render_main_config(dir: Path, listen_port: int, upstream_file: Path, upstream: str) -> str:
    """An nginx.conf in the foreground (`daemon off`, so its starter owns the master)."""
    temp = "\n".join(f"    {kind}_temp_path {dir / 'temp' / kind};" for kind in _TEMP_PATHS)
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {dir / "nginx.pid"};
error_log {dir / "error.log"} notice;

events {{
    worker_connections 256;
}}

http {{
    access_log off;
{temp}

    include {upstream_file};

    server {{
        listen 127.0.0.1:{listen_port};
        location / {{
            proxy_pass http://{upstream};
            # No retry on the other arm: a failing canary must show as failures.
            proxy_next_upstream off;
            proxy_connect_timeout 1s;
        }}
    }}
}}
"""


def write_config(
    dir: Path,
    listen_port: int,
    upstream: str,
    stable: str | Sequence[str],
    canary: str | Sequence[str],
) -> tuple[Path, Path]:
    """Write `dir/nginx.conf` and the owned `dir/upstream.conf` (0% canary); each arm one
    endpoint, or several."""
    dir.mkdir(parents=True, exist_ok=True)
    for kind in _TEMP_PATHS:
        (dir / "temp" / kind).mkdir(parents=True, exist_ok=True)
    upstream_file = dir / "upstream.conf"
    state = RouterState(
        canary_weight=0, stable_endpoints=_listed(stable), canary_endpoints=_listed(canary)
    )
    upstream_file.write_text(render_upstream(upstream, state))
    config = dir / "nginx.conf"
    config.write_text(
        render_main_config(dir.resolve(), listen_port, upstream_file.resolve(), upstream)
    )
    return config, upstream_file


def _listed(endpoints: str | Sequence[str]) -> tuple[str, ...]:
    return (endpoints,) if isinstance(endpoints, str) else tuple(endpoints)


def start_nginx(config: Path, listen_port: int, log_dir: Path) -> Process:
    """Start nginx on `config` and wait until it listens, has written its pid file and its
    worker serves (on a busy machine the worker sets its title after the port opens)."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError(f"nginx is not installed: {INSTALL_HINT}")
    argv = [binary, "-e", "stderr", "-c", str(config.resolve())]
    process = start(f"nginx-{listen_port}", argv, log_dir)
    pid_file = config.parent / "nginx.pid"
    try:
        wait_until(port_open(listen_port), process, timeout=10)
        wait_until(lambda: _pid(pid_file) == process.pid, process, timeout=5)
        wait_until(lambda: bool(workers_of(process.pid).active), process, timeout=10)
    except BaseException:
        process.stop()
        raise
    return process


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


@dataclass
class Nginx:
    """One nginx and its config directory; `reload` is what an operator's reload does."""

    directory: Path
    listen_port: int
    log_dir: Path
    upstream: str = "service"
    process: Process | None = None

    @property
    def main_config(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def upstream_file(self) -> Path:
        return self.directory / "upstream.conf"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}/"

    def start(self, stable: str | Sequence[str], canary: str | Sequence[str]) -> None:
        """Write the configs (stable and canary servers, 0% canary) and start nginx."""
        write_config(self.directory, self.listen_port, self.upstream, stable, canary)
        self.process = start_nginx(self.main_config, self.listen_port, self.log_dir)

    def reload(self) -> None:
        """`nginx -s reload`, as someone on the host would run it (returns once signalled)."""
        binary = nginx_binary()
        assert binary is not None
        subprocess.run(
            [binary, "-e", "stderr", "-s", "reload", "-c", str(self.main_config.resolve())],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
