"""Checks made before writing an output: never overwrite silently, fail early and clearly
when a place cannot be written."""

from __future__ import annotations

from pathlib import Path

from cmap.errors import DataError, OutputExistsError


def refuse_existing(*paths: Path, overwrite: bool) -> None:
    """Raise `OutputExistsError` naming the first of `paths` that exists, unless `overwrite`."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{existing[0]}: already exists; choose another output or pass --overwrite true"
        )


def ensure_writable(path: Path) -> None:
    """Create the folder of the output `path` if needed and check that a file can be written
    there, naming `path` when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.writable")
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise DataError(path, f"cannot be written ({err.strerror or err})") from err
