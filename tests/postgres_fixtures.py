"""Fixtures for tests that need PostgreSQL: a real, throwaway server of their own.

Use from a test module with `pytest_plugins = ["tests.postgres_fixtures"]`, then take
`postgres_url` (one database on one server per session) or `fresh_postgres_url` (a new, empty
database per test on that server). Without PostgreSQL's binaries the tests skip, saying how
to install them. The cluster is initdb'd in a temp dir, serves only 127.0.0.1 on a free port
with trust auth, and is stopped by PID in teardown; the temp dir is removed.

As root (CI), initdb and postgres, which refuse to run as root, run as an unprivileged
account (`postgres` if it exists, else `nobody`) through `setpriv`, which execs them: the
PID we hold is the postmaster's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from deploy.processes import PortTaken, Process, free_port, start, wait_until

INSTALL_HINT = "as root: apt-get install -y postgresql (or `make test`, which does)"
SUPERUSER = "postgres"
DATABASE = "sluicegate"
BINARIES = ("initdb", "pg_ctl", "postgres")
RUN_AS = ("postgres", "nobody")  # as root: the first account of these that exists


def postgres_binaries() -> Path | None:
    """The directory with initdb, pg_ctl and postgres (PATH first, then Debian's newest)."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)  # /usr/local/bin/initdb: a symlink
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda path: _version(path.parent.name), reverse=True)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in BINARIES):
            return directory
    return None


def _version(name: str) -> tuple[int, ...]:
    """`15` → (15,), `9.6` → (9, 6); names that are not versions sort first."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def _unprivileged() -> pwd.struct_passwd:
    """The account root runs PostgreSQL as."""
    for name in RUN_AS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"running as root and none of the accounts {RUN_AS} exists")


def _reachable(directory: str) -> bool:
    """Whether any user can traverse every directory down to `directory`."""
    path = Path(directory).resolve()
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _temp_dir(account: pwd.struct_passwd | None) -> Path:
    """A fresh temp dir, owned by `account` (when root runs PostgreSQL as it)."""
    if account is None:
        return Path(tempfile.mkdtemp(prefix="sg-pg-"))
    base = tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix="sg-pg-", dir=base if _reachable(base) else "/tmp"))
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def _as(account: pwd.struct_passwd | None, argv: list[str]) -> list[str]:
    """`argv` run as `account` (none: as we are); setpriv execs it, so the PID stays."""
    if account is None:
        return argv
    ids = [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups"]
    return ["setpriv", *ids, "--", *argv]


def _url(port: int, database: str) -> str:
    """The URL of `database` on the loopback server at `port`, as the superuser."""
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"


def _accepts(url: str) -> bool:
    """Whether the server at `url` takes a connection now (not while it starts up)."""
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _stop(process: Process) -> None:
    """Stop the server and its backends by PID."""
    # SIGINT is PostgreSQL's fast shutdown: it ends open sessions too (a test may leak one),
    # where SIGTERM's smart shutdown would wait for them until the timeout.
    process.stop(timeout=30.0, signum=signal.SIGINT)


def _start(
    bin_dir: Path, data: Path, log_dir: Path, account: pwd.struct_passwd | None
) -> tuple[Process, int]:
    """Start `postgres` on a free loopback port, once it accepts connections; it, its port."""
    for attempt in range(3):
        port = free_port()
        argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "unix_socket_directories=",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ):
            argv += ["-c", setting]
        process = start(f"postgres-{attempt}", _as(account, argv), log_dir)
        try:
            wait_until(lambda port=port: _accepts(_url(port, "postgres")), process, timeout=60)
        except PortTaken:
            continue  # something took the port after free_port chose it: another one
        except BaseException:
            _stop(process)
            raise
        return process, port
    raise RuntimeError(f"postgres found no free port in 3 attempts:\n{process.tail(40)}")


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server with one empty database; yields its URL, then stops."""
    bin_dir = postgres_binaries()
    if bin_dir is None:
        raise FileNotFoundError(f"PostgreSQL's binaries are missing: {INSTALL_HINT}")
    account = _unprivileged() if os.geteuid() == 0 else None
    directory = _temp_dir(account)
    process: Process | None = None
    try:
        data = directory / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), f"--username={SUPERUSER}"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        done = subprocess.run(
            _as(account, initdb), cwd=directory, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        process, port = _start(bin_dir, data, directory, account)
        with psycopg.connect(_url(port, "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        yield _url(port, DATABASE)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of an empty database on a throwaway PostgreSQL server, one per session."""
    if postgres_binaries() is None:
        pytest.skip(f"PostgreSQL is not installed (no initdb, pg_ctl, postgres): {INSTALL_HINT}")
    with running_postgres() as url:
        yield url


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database (`test_<hex>`) on the server of `server_url`; dropped after."""
    name = f"test_{uuid.uuid4().hex}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")  # ends leftover sessions
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database of this test's own on the session's server."""
    with fresh_database(postgres_url) as url:
        yield url
