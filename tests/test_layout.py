"""The code map of the README holds: imports flow one way and no file grows past 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cmap"
GROUND = {"errors", "io"}
# What each room may import from cmap (its own modules always).
ALLOWED = {
    "errors": set(),
    "io": {"errors"},
    "data": GROUND,
    "models": {"errors"},
    "reports": GROUND,
    "tasks": GROUND | {"data", "models", "reports"},
    "fewshot": GROUND | {"data", "models", "tasks"},  # few-shot evaluation of encoders
    "callbacks": GROUND | {"data", "reports", "fewshot"},
    "products": GROUND | {"data", "reports", "callbacks"},  # map products
}
# the command line knows every room
TOP = {"cli", "config_check", "links", "commands", "sweep", "federated", "main", "__main__"}
TOP |= {"__init__"}


def room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def cmap_imports(path: Path) -> set[str]:
    """Rooms of cmap imported by a module, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cmap" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if room(p) not in TOP)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    own = room(path)
    forbidden = cmap_imports(path) - ALLOWED[own] - {own}
    assert not forbidden, f"{path.relative_to(PACKAGE)} ({own}) imports {sorted(forbidden)}"


def test_every_module_is_in_a_known_room():
    assert {room(p) for p in MODULES} == set(ALLOWED)


def test_no_file_is_longer_than_300_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long


def test_the_test_install_holds_every_optional_package():
    """`pip install -e ".[dev]"` (the README's test command) must bring the geo extra's
    packages, or the tests of STAC, Zarr and vector labels could not run."""
    import tomllib

    extras = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    assert set(extras["geo"]) <= set(extras["dev"])
