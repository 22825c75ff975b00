"""Every import points down a floor (docs/ARCHITECTURE.md, "The floors").

Each module of ours is on one floor; it may import its own room and any lower floor,
never a higher floor and never another room of its own floor. Imports inside functions
count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Ground first. Rooms on one floor may not import each other.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("sluicegate",),
    ("workflows", "activities"),
    ("workers",),
    ("frontends.client",),
    ("frontends.chatops",),
    ("frontends.cli",),
    ("deploy",),
    ("bench",),
    ("tests",),
)
ROOMS = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
PACKAGES = sorted({room.split(".")[0] for room in ROOMS})


def room_of(module: str) -> str | None:
    """The longest room `module` is in; None if it is not ours (or a bare package)."""
    matches = [room for room in ROOMS if module == room or module.startswith(room + ".")]
    return max(matches, key=len, default=None)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every module `module` imports, anywhere in it, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=module)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def our_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    here = room_of(module)
    if here is None:  # a package's own __init__ above its rooms, e.g. frontends/
        return []
    wrong = []
    for name in sorted(imports_of(module, source, is_package)):
        there = room_of(name)
        if there is None or there == here:
            continue
        if ROOMS[there] >= ROOMS[here]:
            direction = "sideways" if ROOMS[there] == ROOMS[here] else "up"
            wrong.append(f"{module} imports {name} ({direction}: {here} → {there})")
    return wrong


def test_every_module_is_on_a_floor() -> None:
    homeless = [
        module_name(path)
        for path in our_modules()
        if room_of(module_name(path)) is None and path.name != "__init__.py"
    ]
    assert homeless == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_points_down(package: str) -> None:
    wrong = [
        line
        for path in our_modules()
        if path.relative_to(REPO).parts[0] == package
        for line in violations(module_name(path), path.read_text(), path.name == "__init__.py")
    ]
    assert wrong == []


def test_the_checker_sees_every_kind_of_upward_import() -> None:
    """Lazy, relative and from-imports, up and sideways; an import down is fine."""
    source = (
        "from sluicegate.spec import DeploymentSpec\n"
        "def lazy():\n"
        "    from workflows import canary\n"
        "    from ..activities import routers\n"
    )
    assert violations("workflows.probe", source) == [
        "workflows.probe imports activities (sideways: workflows → activities)",
        "workflows.probe imports activities.routers (sideways: workflows → activities)",
    ]
    assert violations("sluicegate.probe", "import frontends.cli.app\n") == [
        "sluicegate.probe imports frontends.cli.app (up: sluicegate → frontends.cli)"
    ]
    assert violations("frontends.cli.probe", "from workers.client import connect\n") == []
