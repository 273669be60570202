"""Checks made before writing an output: never overwrite silently, fail early and clearly
when a place cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from cmap.errors import DataError, OutputExistsError


def derived(source: Path, tag: str, suffix: str = ".tif") -> Path:
    """The default name of a product of `source` (a map or its probabilities) beside it:
    `<map stem>_<tag><suffix>`, e.g. `map_probabilities.tif` -> `map_smoothed.tif`."""
    source = Path(source)
    return source.with_name(f"{source.stem.removesuffix('_probabilities')}_{tag}{suffix}")


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
    check_writable_folder(path.parent, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.writable")
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise DataError(path, f"cannot be written ({err.strerror or err})") from err


MARKER = ".written-by-cmap"  # in every folder cmap writes whole: only those are replaced


def check_folder_output(out: Path, overwrite: bool, inputs: list[Path]) -> None:
    """A folder output may replace only a folder cmap wrote (it holds `MARKER`), with
    `overwrite`, and never a folder holding one of the `inputs` (nor a file)."""
    target = Path(out).resolve()
    for source in inputs:
        source = Path(source).resolve()
        if target == source or target in source.parents:
            raise DataError(out, f"holds the input {source}; choose another output folder")
    if not target.exists():
        ensure_writable(target)
        return
    refuse_existing(out, overwrite=overwrite)
    if not target.is_dir() or not (target / MARKER).is_file():
        raise DataError(
            out,
            "exists and was not written by cmap, so it is not replaced even with --overwrite; "
            "choose another output or remove it yourself",
        )


def check_writable_folder(folder: Path, output: Path | None = None) -> None:
    """`folder` can hold outputs (`output` names them in the refusal): it, or the nearest
    folder above it that exists, is a writable folder. Nothing is created."""
    existing = Path(folder).resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        problem = "is a file" if existing.is_file() else "cannot be written"
        raise DataError(output or folder, f"cannot be written there: {existing} {problem}")
