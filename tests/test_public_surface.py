"""Each product package is typed (PEP 561 `py.typed`, shipped in the wheel) and says what
it exports: every package `__init__` has a docstring and an `__all__`."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES: list[str] = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
INITS = sorted(init for package in PACKAGES for init in (REPO / package).rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_product_package_is_marked_typed(package: str) -> None:
    assert (REPO / package / "py.typed").is_file()


def test_every_product_directory_is_a_package() -> None:
    """No namespace packages: a directory of modules has an `__init__` saying what it is."""
    folders = {
        path.parent
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert (
        sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file()) == []
    )


@pytest.mark.parametrize("init", INITS, ids=lambda path: str(path.parent.relative_to(REPO)))
def test_every_package_says_what_it_exports(init: Path) -> None:
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), "a one-line docstring saying what the package is"
    targets = [
        node.targets[0] if isinstance(node, ast.Assign) else node.target
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
    ]
    assert any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
