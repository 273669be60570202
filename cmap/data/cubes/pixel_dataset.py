"""Unlabelled pixel series drawn from a cube's windows, for self-supervised training."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.pixels import model_inputs, pixel_series
from cmap.data.thermal import ThermalPositions
from cmap.errors import DataError


def _padded(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate pixel series of different widths (T'), padding with invalid dates."""
    width = max(piece["mask"].shape[1] for piece in pieces)
    out = {}
    for key in [k for k in ("ts", "mask", "date", "gdd") if k in pieces[0]]:
        parts = []
        for piece in pieces:
            pad = [(0, 0), (0, width - piece[key].shape[1])] + [(0, 0)] * (piece[key].ndim - 2)
            parts.append(np.pad(piece[key], pad))
        out[key] = np.concatenate(parts)
    out["pixel"] = np.concatenate([piece["pixel"] for piece in pieces])
    return out


class CubePixels(IterableDataset):
    """Unlabelled pixel series of a cube's windows, in batches of exactly `batch_size`, for
    self-supervised training (the `AutoEncoder`).

    An epoch is `batches` batches per process. With `shuffle`, each process (and DataLoader
    worker) takes its own share of the windows (`_shard`) and visits them, and each window's
    pixels that have a valid date, in an order drawn from (seed, epoch, rank, worker); passes
    repeat until the epoch is full, so every process yields the same number of batches (as
    distributed training needs). Without `shuffle` (validation) the order is fixed: the same
    pixels at every epoch. Batches have
    the keys of a samples batch: ts [N, T, C], positions and days [N, T] (days since the
    season start), mask [N, T], class [N] (-1: unlabelled), season [N] and index [N] (the
    pixel's flat index in the cube, row * width + col).
    """

    def __init__(
        self,
        cube: Cube,
        windows: list[Window],
        batch_size: int,
        batches: int,
        first_day: np.datetime64,
        season: int,
        shuffle: bool,
        seed: int = 0,
        thermal: ThermalPositions | None = None,
    ):
        self.cube, self.windows, self.thermal = cube, windows, thermal
        self.batch_size, self.batches = batch_size, batches
        self.days = (cube.dates - first_day).astype(np.int64)
        self.season, self.shuffle, self.seed = season, shuffle, seed
        self.epoch, self.rank, self.world_size = 0, 0, 1

    def __len__(self) -> int:
        info = get_worker_info()
        if info is None:
            return self.batches
        return len(range(info.id, self.batches, info.num_workers))

    def _shard(self, worker: int, workers: int) -> list[Window]:
        """This process's and worker's windows: a share of a permutation drawn from (seed,
        epoch), the same in every process, so shares do not overlap; all windows when there
        are fewer windows than readers (or without `shuffle`)."""
        readers = self.world_size * workers
        if not self.shuffle or len(self.windows) < readers:
            return self.windows
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.windows))
        return [self.windows[i] for i in order[self.rank * workers + worker :: readers]]

    def _pixels(
        self, windows: list[Window], rng: np.random.Generator | None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Pixel series, window after window, pass after pass (each pass in a new order)."""
        while True:
            found = False
            for number in rng.permutation(len(windows)) if rng else range(len(windows)):
                window = windows[number]
                series = pixel_series(*self.cube.read(window))
                if not len(series["pixel"]):
                    continue
                if self.thermal is not None:
                    series["gdd"] = self.thermal(
                        window, series["pixel"], series["date"], series["mask"]
                    )
                found = True
                keep = rng.permutation(len(series["pixel"])) if rng else slice(None)
                series = {key: value[keep] for key, value in series.items()}
                row, col = np.divmod(series["pixel"], int(window.width))
                series["pixel"] = (row + window.row_off) * self.cube.width + col + window.col_off
                yield series
            if not found:
                raise DataError(self.cube.folder, "no valid pixel in the windows to train on")

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = None
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        stream, current, used = self._pixels(self._shard(worker, workers), rng), None, 0
        for _ in range(len(self)):
            parts, need = [], self.batch_size
            while need:
                if current is None or used == len(current["pixel"]):
                    current, used = next(stream), 0
                take = min(need, len(current["pixel"]) - used)
                parts.append({key: value[used : used + take] for key, value in current.items()})
                used, need = used + take, need - take
            yield self._tensors(_padded(parts))

    def _tensors(self, series: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        n = len(series["mask"])
        inputs = [series[key] for key in ("ts", "mask", "date")]
        return model_inputs(*inputs, self.days, series.get("gdd")) | {
            "class": torch.full((n,), -1, dtype=torch.int64),
            "season": torch.full((n,), self.season, dtype=torch.int64),
            "index": torch.from_numpy(series["pixel"].astype(np.int64)),
        }


class EpochLoader(DataLoader):
    """A DataLoader that tells its `CubePixels` the epoch before each pass, so the draws of a
    run are reproducible (workers copy the dataset when a pass starts)."""

    def __init__(self, dataset: CubePixels, epoch: Callable[[], int], **kwargs):
        super().__init__(dataset, batch_size=None, **kwargs)
        self._epoch = epoch

    def __iter__(self):
        self.dataset.epoch = self._epoch()
        return super().__iter__()
