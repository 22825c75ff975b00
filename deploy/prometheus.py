"""A local Prometheus (Debian package `prometheus`) scraping given targets every second."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import httpx
import yaml

from deploy.processes import Process, free_port, start, wait_until

INSTALL_HINT = "install it with `apt-get install -y prometheus` (or run `make test` as root)"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class Prometheus:
    """One Prometheus process with its own config and storage under `directory`."""

    def __init__(self, directory: Path, log_dir: Path) -> None:
        self.directory = directory
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self, targets: Mapping[str, tuple[str, str]], scrape_interval: str = "1s") -> None:
        """Scrape each job's (host:port, metrics path) every `scrape_interval`."""
        binary = prometheus_binary()
        if binary is None:
            raise RuntimeError(f"no prometheus binary: {INSTALL_HINT}")
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        jobs = [
            {
                "job_name": job,
                "metrics_path": path,
                "scrape_interval": scrape_interval,
                "static_configs": [{"targets": [address]}],
            }
            for job, (address, path) in targets.items()
        ]
        config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process = start("prometheus", argv, self.log_dir)
        wait_until(self._ready, self.process)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
