"""On-disk cache of prepared splits, so datasets larger than RAM can be iterated.

A split read from parquet (sorted, windowed, validated: see `load_series`) is saved as one
`.npy` file per array under `<cache_dir>/<split name>-<source hash>-<state hash>/`. The state
hash covers the source files (path, size, modification time), every reading setting and the
cache format version, so the cache is reused while nothing changed and rebuilt when anything
did; entries left by older states of the same source are deleted on rebuild. The observation
arrays (values, dates) stay on disk: a batch reads each sample's rows with one positioned
read (`DiskArray.read_runs`), so resident memory does not grow with the split. (Memory maps
were tried first: on recent Linux kernels a random access maps a whole large folio of the file,
and 256 samples pulled 400 MB into resident memory.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from cmap.data.series.table import SeriesTable
from cmap.errors import DataError
from cmap.io.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ON_DISK = ("values", "dates")  # observation rows: large, read from disk batch by batch
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


class DiskArray:
    """A read-only `.npy` array left on disk; rows are read on demand with `os.preadv`.

    `shape` and `dtype` are those of the array. The file is opened lazily in each process, so
    the object can be sent to DataLoader workers.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        header = np.load(self.path, mmap_mode="r")  # reads the header only, no data
        self.shape, self.dtype, self.offset = header.shape, header.dtype, header.offset
        del header
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read_runs(self, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
        """Rows starts[i] .. starts[i] + lengths[i] of every i -> [N, width, ...], zero-padded."""
        out = np.zeros((len(starts), width, *self.shape[1:]), dtype=self.dtype)
        fd = self._descriptor()
        for i, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist())):
            if length:
                os.preadv(fd, [out[i, :length]], self.offset + start * self.row_bytes)
        return out


def save(table: SeriesTable, folder: Path) -> None:
    """Write every array of `table` to `folder` (built aside, then renamed into place)."""
    with atomic_path(folder) as partial:
        partial.mkdir(parents=True)
        for field in fields(SeriesTable):
            array = np.asarray(getattr(table, field.name))
            if array.dtype == object:
                array = array.astype(str)
            np.save(partial / f"{field.name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        (partial / COMPLETE).touch()


def load(folder: Path) -> SeriesTable:
    """A cached split: per-sample arrays in memory, observation rows left on disk."""
    arrays = {}
    for field in fields(SeriesTable):
        path = folder / f"{field.name}.npy"
        try:
            if field.name in ON_DISK:
                arrays[field.name] = DiskArray(path)
            else:
                arrays[field.name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(path, f"cache file cannot be read ({err}); delete {folder}") from err
    return SeriesTable(**arrays)


def cached_split(
    cache_dir: Path, split_dir: Path, settings: dict, build: Callable[[], SeriesTable]
) -> SeriesTable:
    """The split from the cache when its sources and settings are unchanged, else built,
    saved and then read back from the cache."""
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
