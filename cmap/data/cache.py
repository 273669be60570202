"""On-disk cache of prepared splits, memory-mapped so datasets larger than RAM can be iterated.

A split read from parquet (sorted, windowed, validated: see `load_series`) is saved as one
`.npy` file per array under `<cache_dir>/<split name>-<source hash>-<state hash>/`. The state
hash covers the source files (path, size, modification time), every reading setting and the
cache format version, so the cache is reused while nothing changed and rebuilt when anything
did; entries left by older states of the same source are deleted on rebuild. The observation
arrays (values, dates) are memory-mapped read-only; `release` drops their pages from the
process's resident memory (they stay in the OS page cache), which keeps the memory of a long
pass over a huge split bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from cmap.data.errors import DataError
from cmap.data.samples import SeriesTable

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAPPED = ("values", "dates")  # observation rows: large, memory-mapped
COMPLETE = "complete"  # written last: an entry without it is a crashed build


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def state_hash(sources: list[Path], settings: dict) -> str:
    """Hash of the sources' identity (path, size, mtime) and of the reading settings."""
    stamps = []
    for path in sources:
        if path.exists():
            stat = path.stat()
            stamps.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return _digest({"version": FORMAT_VERSION, "sources": stamps, "settings": settings})


def map_npy(path: Path) -> tuple[np.ndarray, mmap.mmap]:
    """Read-only array over a memory map of an `.npy` file, and the map (for `release`)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if fortran:
        raise DataError(path, "cache array is in Fortran order; delete the cache folder")
    count = int(np.prod(shape))
    array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape)
    return array, mapped


def release(maps: tuple[mmap.mmap, ...]) -> None:
    """Drop the pages of memory-mapped arrays from resident memory (re-read on next access)."""
    for mapped in maps:
        if hasattr(mmap, "MADV_DONTNEED"):
            mapped.madvise(mmap.MADV_DONTNEED)


def save(table: SeriesTable, folder: Path) -> None:
    """Write every array of `table` to `folder` (built aside, then renamed into place)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for field in fields(SeriesTable):
        if field.name == "maps":
            continue
        array = np.asarray(getattr(table, field.name))
        if array.dtype == object:
            array = array.astype(str)
        np.save(partial / f"{field.name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    (partial / COMPLETE).touch()
    partial.rename(folder)


def load(folder: Path) -> SeriesTable:
    """A cached split: per-sample arrays in memory, observation rows memory-mapped."""
    arrays, maps = {}, []
    for field in fields(SeriesTable):
        if field.name == "maps":
            continue
        path = folder / f"{field.name}.npy"
        try:
            if field.name in MAPPED:
                arrays[field.name], mapped = map_npy(path)
                maps.append(mapped)
            else:
                arrays[field.name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(path, f"cache file cannot be read ({err}); delete {folder}") from err
    return SeriesTable(**arrays, maps=tuple(maps))


def cached_split(
    cache_dir: Path, split_dir: Path, settings: dict, build: Callable[[], SeriesTable]
) -> SeriesTable:
    """The split from the cache when its sources and settings are unchanged, else built,
    saved and then read back memory-mapped."""
    source = _digest(str(split_dir.resolve()))
    sources = sorted(split_dir.glob("*.pq")) + sorted(split_dir.parent.glob("*.yaml"))
    name = f"{split_dir.name}-{source}-{state_hash(sources, settings)}"
    folder = Path(cache_dir) / name
    if (folder / COMPLETE).exists():
        log.info("%s: reading the prepared split from the cache %s", split_dir, folder)
        return load(folder)
    for stale in Path(cache_dir).glob(f"{split_dir.name}-{source}-*"):
        log.info("%s: sources or settings changed, removing the old cache %s", split_dir, stale)
        shutil.rmtree(stale, ignore_errors=True)
    table = build()
    try:
        save(table, folder)
    except OSError as err:
        raise DataError(folder, f"cannot write the cache ({err}); set another cache_dir") from err
    log.info("%s: prepared split cached in %s", split_dir, folder)
    return load(folder)
