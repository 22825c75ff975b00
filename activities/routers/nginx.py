"""nginx router: a weighted upstream block in a file Sluicegate owns, applied by graceful reload.

nginx's main config must `include` `upstream_file` (in `http {}`) and `proxy_pass` to the
upstream. A change is: write the file atomically, `nginx -T` (test, and check the file is
really included), SIGHUP the master, then wait until every worker accepting connections
was started by that reload. The router runs on nginx's host: it writes the file, runs the
binary and reads `/proc`. See docs/routers/nginx.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from activities.routers.base import ReadBackRouter
from activities.routers.nginx_upstream import check_endpoints, parse_upstream, render_upstream
from sluicegate.contracts import RouterState
from sluicegate.errors import RouterMisconfigured, RouterUnavailable
from sluicegate.spec import NginxRouter

RELOAD_TIMEOUT = 10.0  # seconds nginx gets to replace its workers after SIGHUP
TEST_TIMEOUT = 30.0  # seconds `nginx -T` may take
_POLL = 0.05
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # nginx lives here, often not on PATH


@dataclass(frozen=True)
class Workers:
    """The master's worker processes: those accepting connections, and those draining."""

    active: frozenset[int]
    draining: frozenset[int]


class NginxRouterClient(ReadBackRouter[int]):
    """Router for one local nginx whose main config includes the upstream file we own."""

    kind = "nginx"

    def __init__(self, spec: NginxRouter) -> None:
        self.spec = spec
        self.upstream_file = Path(spec.upstream_file)
        self.previous_file = self.upstream_file.with_name(self.upstream_file.name + ".previous")
        self.loaded_file = self.upstream_file.with_name(self.upstream_file.name + ".loaded")
        self._pid_file: Path | None = None

    @property
    def where(self) -> str:
        return str(self.upstream_file)

    @asynccontextmanager
    async def _connect(self) -> AsyncGenerator[int, None]:
        """The running master's pid: nothing is read or written while nginx is down."""
        yield await self._master()

    def _validate(self, desired: RouterState) -> RouterState:
        check_endpoints(desired)
        return desired

    async def _write(self, master: int, desired: RouterState) -> None:
        """Write, test, reload and wait for new workers; skipped if that is already live."""
        text = render_upstream(self.spec.upstream, desired)
        current = self._file_text()
        if current is not None and current != text and self._routes(current, desired):
            text = current  # the same routing with the endpoints in another order
        workers = workers_of(master)
        if current == text and self._loaded(master, workers, text):
            return
        if current != text:
            if current is not None:
                self._write_file(self.previous_file, current)
            self._write_file(self.upstream_file, text)
        try:
            await self._test()
        except BaseException:
            self._put_back(current)  # nothing was loaded: leave the file as nginx runs it
            raise
        workers = await self._reload(master, workers)
        self._write_file(
            self.loaded_file,
            json.dumps(
                {"sha256": _sha256(text), "master": master, "workers": sorted(workers.active)}
            ),
        )

    def _routes(self, text: str, desired: RouterState) -> bool:
        """Whether an upstream file as Sluicegate writes it routes as `desired`."""
        try:
            state = parse_upstream(text, self.spec.upstream, str(self.upstream_file))
        except RouterMisconfigured:
            return False
        return state.matches(desired) and text == render_upstream(self.spec.upstream, state)

    def _file_text(self) -> str | None:
        try:
            return self.upstream_file.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise RouterMisconfigured(f"cannot read {self.upstream_file}: {err}") from err

    async def _read(self, _: int) -> RouterState:
        """The upstream file's routing."""
        text = self._file_text()
        if text is None:
            raise RouterMisconfigured(
                f"{self.upstream_file} does not exist on this worker: the worker must run on "
                "nginx's host, and nginx.conf must include that file"
            )
        return parse_upstream(text, self.spec.upstream, str(self.upstream_file))

    def _put_back(self, previous: str | None) -> None:
        if previous is None:
            self.upstream_file.unlink(missing_ok=True)
        else:
            self._write_file(self.upstream_file, previous)

    def _write_file(self, path: Path, text: str) -> None:
        try:
            _write_atomically(path, text)
        except OSError as err:
            raise RouterMisconfigured(
                f"cannot write {path} on this worker ({err.strerror}): the worker must run on "
                "nginx's host, as a user allowed to write there"
            ) from err

    def _loaded(self, master: int, workers: Workers, text: str) -> bool:
        """Whether nginx runs `text`: we reloaded it, and its workers are still the ones we saw.

        Other workers mean someone reloaded or restarted nginx since, reading the file as it
        was then; that is not knowable, so the caller reloads.
        """
        try:
            record = json.loads(self.loaded_file.read_text())
        except (OSError, ValueError):
            return False
        return (
            record.get("sha256") == _sha256(text)
            and record.get("master") == master
            and set(record.get("workers", ())) == set(workers.active)
            and bool(workers.active)
        )

    def _binary(self) -> str:
        path = os.environ.get("PATH", os.defpath) + os.pathsep + os.pathsep.join(_SBIN)
        found = shutil.which(self.spec.nginx_binary, path=path)
        if found is None:
            raise RouterMisconfigured(
                f"nginx binary {self.spec.nginx_binary!r} not found on this worker "
                f"(PATH and {', '.join(_SBIN)}); install nginx or set router.nginx_binary"
            )
        return found

    async def _run(self, *args: str) -> tuple[int, str, str]:
        """Run the nginx binary with `args`; returns (exit code, stdout, stderr)."""
        process = await asyncio.create_subprocess_exec(
            self._binary(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), TEST_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RouterUnavailable(
                f"`nginx {' '.join(args)}` did not finish within {TEST_TIMEOUT} s"
            ) from None
        return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def _test(self) -> None:
        """`nginx -T`: the whole config must be valid and must include our upstream file."""
        code, out, err = await self._run("-T", "-q", "-e", "stderr", "-c", self.spec.main_config)
        if code != 0:
            raise RouterMisconfigured(
                f"nginx refused the config ({self.spec.main_config}), so {self.upstream_file} "
                f"was put back as it was: {_excerpt(err)}"
            )
        included = {
            os.path.realpath(m.group(1))
            for m in re.finditer(r"^# configuration file (.+):$", out, re.MULTILINE)
        }
        if os.path.realpath(self.upstream_file) not in included:
            raise RouterMisconfigured(
                f"{self.spec.main_config} does not include {self.upstream_file}, so nginx "
                "would never load the weights written there (the file was put back as it was)"
            )

    async def _pid_path(self) -> Path:
        """The master's pid file: `pid` in the main config, else nginx's compiled-in default."""
        if self._pid_file is not None:
            return self._pid_file
        try:
            main = Path(self.spec.main_config).read_text()
        except OSError as err:
            raise RouterMisconfigured(f"cannot read {self.spec.main_config}: {err}") from err
        match = re.search(r"^\s*pid\s+([^;\s]+)\s*;", main, re.MULTILINE)
        path = match.group(1).strip("\"'") if match else None
        if path is None or not os.path.isabs(path):
            _, _, build = await self._run("-V")  # the compiled-in defaults
            if path is None:
                default = re.search(r"--pid-path=(\S+)", build)
                path = default.group(1) if default else "logs/nginx.pid"
            prefix = re.search(r"--prefix=(\S+)", build)
            path = os.path.join(prefix.group(1) if prefix else "/usr/local/nginx", path)
        self._pid_file = Path(path)
        return self._pid_file

    async def _master(self) -> int:
        """The running master's pid; RouterUnavailable if nginx is not running."""
        pid_file = await self._pid_path()
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            raise RouterUnavailable(
                f"nginx is not running: no master pid in {pid_file} (main config "
                f"{self.spec.main_config})"
            ) from None
        if not _title(pid).startswith("nginx: master process"):
            raise RouterUnavailable(
                f"nginx is not running: pid {pid} from {pid_file} is not an nginx master"
            )
        return pid

    async def _reload(self, master: int, before: Workers) -> Workers:
        """SIGHUP the master and wait until only workers it started since then accept."""
        try:
            os.kill(master, signal.SIGHUP)
        except ProcessLookupError:
            raise RouterUnavailable(f"nginx master {master} exited before its reload") from None
        except PermissionError:
            raise RouterMisconfigured(
                f"this worker may not signal nginx master {master}: run it as nginx's user"
            ) from None
        old = before.active | before.draining
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while True:
            if not _title(master).startswith("nginx: master process"):
                raise RouterUnavailable(f"nginx master {master} exited during its reload")
            workers = workers_of(master)
            # nginx starts the new workers, then tells the old ones to stop accepting.
            if workers.active and not workers.active & old:
                return workers
            if time.monotonic() >= deadline:
                raise RouterUnavailable(
                    f"nginx master {master} did not start workers on the new config within "
                    f"{RELOAD_TIMEOUT} s (see its error log); {self.upstream_file} is written, "
                    "a retry reloads again"
                )
            await asyncio.sleep(_POLL)


def workers_of(master: int) -> Workers:
    """The master's worker processes, from /proc (nginx sets their titles)."""
    active: set[int] = set()
    draining: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat.rpartition(")")[2].split()[1]) != master:
            continue
        title = _title(int(entry.name))
        if title.startswith("nginx: worker process is shutting down"):
            draining.add(int(entry.name))
        elif title.startswith("nginx: worker process"):
            active.add(int(entry.name))
    return Workers(frozenset(active), frozenset(draining))


def _title(pid: int) -> str:
    """A process's title as `ps` shows it ("" once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` by renaming a temporary file from the same directory over it."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644  # nginx's master may run as another user: it must read the file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _excerpt(stderr: str) -> str:
    """nginx's last messages, without the "2024/01/02 03:04:05 [emerg] 12#12: " noise."""
    lines = [
        re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ", r"\1 ", line.strip())
        for line in stderr.splitlines()
        if line.strip()
    ]
    return " | ".join(lines[-3:])[:500] or "(no message)"
