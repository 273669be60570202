"""The code map of CONTRIBUTING.md holds: imports flow one way, between the rooms of cmap and
between the subjects of `cmap.data`, and no file grows past 500 lines (a warning from 400)."""

from __future__ import annotations

import ast
import warnings
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
TOP = {"cli", "config_check", "links", "commands", "sweep", "federated", "tiles", "main"}
TOP |= {"__main__"}
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


MODULES_ALL = sorted(PACKAGE.rglob("*.py"))
MODULES = [p for p in MODULES_ALL if room(p) not in TOP]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    own = room(path)
    forbidden = cmap_imports(path) - ALLOWED[own] - {own}
    assert not forbidden, f"{path.relative_to(PACKAGE)} ({own}) imports {sorted(forbidden)}"


def test_every_module_is_in_a_known_room():
    assert {room(p) for p in MODULES} == set(ALLOWED)


# What each subject of cmap.data may import of cmap.data: the shared modules at its top level
# (season, meta, weather, thermal, ...) import no subject; labels are cut out of cubes.
SUBJECTS = {"shared": set(), "series": {"shared"}, "cubes": {"shared"}, "demo": {"shared"}}
SUBJECTS["labels"] = {"shared", "cubes"}


def subject(name: str) -> str:
    """`cmap.data.X...` -> X's subject ("shared" for the top-level modules)."""
    part = name.split(".")[2] if name.count(".") >= 2 else ""
    return part if part in SUBJECTS else "shared"


DATA = sorted((PACKAGE / "data").rglob("*.py"))


@pytest.mark.parametrize("path", DATA, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_data_subjects_import_one_way(path):
    own = subject("cmap." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cmap.data."):
            names.add(node.module)
    if path.name == "__init__.py" and path.parent.name == "data":
        return  # the package's front: re-exports every subject's public classes
    forbidden = {subject(n) for n in names} - SUBJECTS[own] - {own}
    assert not forbidden, f"{path.relative_to(PACKAGE)} ({own}) imports {sorted(forbidden)}"


WARN, LIMIT = 400, 500  # lines


def test_no_file_is_longer_than_the_limit():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in MODULES_ALL}
    for name, n in lengths.items():
        if n > WARN:
            warnings.warn(f"{name} has {n} lines: split it before it reaches {LIMIT}", stacklevel=1)
    assert not {name: n for name, n in lengths.items() if n > LIMIT}


def test_no_line_is_hand_packed():
    """Formatting is the formatter's: no `# fmt: skip` or `# fmt: off` in the package."""
    packed = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in MODULES_ALL
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "# fmt: skip" in line or "# fmt: off" in line
    ]
    assert not packed


def test_the_test_install_holds_every_optional_package():
    """`pip install -e ".[dev]"` (the README's test command) must bring the geo extra's
    packages, or the tests of STAC, Zarr and vector labels could not run."""
    import tomllib

    extras = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    assert set(extras["geo"]) <= set(extras["dev"])
