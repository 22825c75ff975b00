"""workflows/ performs no I/O and imports nothing that does.

Importing the workflow modules in a fresh interpreter must not pull in an I/O library,
the activities, the worker, the deploy helpers, or any module of ours that runs processes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUR_PACKAGES = (
    "sluicegate", "workflows", "activities", "workers", "frontends", "deploy", "bench", "tests",
)  # fmt: skip
FORBIDDEN = (
    "httpx",
    "prometheus_client",
    "yaml",
    "activities",
    "deploy",
    "workers",
    "tests",
    "frontends",
    "temporalio.client",
    "temporalio.worker",
)
IO_LIBRARIES = ("subprocess", "socket", "httpx", "prometheus_client", "yaml", "shutil")


@cache
def workflow_imports() -> frozenset[str]:
    code = (
        "import workflows.canary, sluicegate.contracts, workflows.details, sys; "
        "print('\\n'.join(sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return frozenset(done.stdout.split())


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def source_of(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, module_level_only: bool) -> set[str]:
    """Modules `path` imports: at module level (including if/try/with blocks), or anywhere."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        for child in ast.iter_child_nodes(node):
            scoped = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if not (module_level_only and scoped):
                pending.append(child)
    return names


def test_the_workflow_modules_import() -> None:
    assert {"workflows.canary", "sluicegate.contracts", "workflows.details"} <= workflow_imports()


def test_no_io_modules_are_imported() -> None:
    leaked = sorted(
        module
        for module in workflow_imports()
        if any(within(module, forbidden) for forbidden in FORBIDDEN)
    )
    assert leaked == []


def test_none_of_our_process_running_modules_are_imported() -> None:
    runners = set()
    for package in OUR_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if any(within(name, "subprocess") for name in imported_names(path, False)):
                relative = path.relative_to(REPO).with_suffix("")
                parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
                runners.add(".".join(parts))
    assert runners, "expected the deploy helpers to be found as subprocess users"

    assert sorted(runners & workflow_imports()) == []


def test_our_imported_modules_import_no_io_library_at_module_level() -> None:
    ours = [
        module
        for module in workflow_imports()
        if any(within(module, package) for package in OUR_PACKAGES)
    ]
    offenders = {}
    for module in ours:
        path = source_of(module)
        assert path is not None, module
        io = sorted(
            name
            for name in imported_names(path, True)
            if any(within(name, library) for library in IO_LIBRARIES)
        )
        if io:
            offenders[module] = io
    assert offenders == {}
