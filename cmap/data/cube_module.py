"""Raster cubes as data: windows read one at a time, batches of valid pixels, for
prediction (every pixel, window by window) and for self-supervised pretraining (unlabelled
pixels drawn from shuffled windows, some windows held out for validation)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from rasterio.windows import Window
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from cmap.data.cube import Cube
from cmap.data.errors import DataError
from cmap.data.samples import SeasonWindow, read_meta


def pixel_series(values: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """A window's values [T, C, h, w] and valid [T, h, w] -> the series of its pixels that
    have at least one valid date, valid dates first: ts [P, T', C], mask [P, T'],
    date index [P, T'] (into the cube's dates), pixel [P] (flat index in the window);
    T' = the most valid dates of any pixel."""
    t, c, h, w = values.shape
    valid = valid.reshape(t, h * w).T  # [h*w, T]
    pixels = np.flatnonzero(valid.any(axis=1))
    valid = valid[pixels]
    counts = valid.sum(axis=1)
    width = int(counts.max(initial=0))
    order = np.argsort(~valid, axis=1, kind="stable")[:, :width]  # valid dates first, in order
    mask = np.arange(width)[None, :] < counts[:, None]
    by_pixel = values.reshape(t, c, h * w).transpose(2, 0, 1)  # [h*w, T, C], a view
    ts = by_pixel[pixels[:, None], order]  # [P, T', C], one gather
    ts[~mask] = 0.0
    return {"ts": ts, "mask": mask, "date": order, "pixel": pixels}


def model_inputs(
    ts: np.ndarray, mask: np.ndarray, date: np.ndarray, days: np.ndarray
) -> dict[str, torch.Tensor]:
    """Pixel series (ts [N, T, C], mask [N, T], date [N, T] into the cube's dates) and the
    cube dates' days since the season start [D] -> ts, positions, days and mask tensors."""
    at = np.where(mask, days[date], 0)
    return {
        "ts": torch.from_numpy(np.ascontiguousarray(ts)),
        "positions": torch.from_numpy(at),
        "days": torch.from_numpy(at.copy()),
        "mask": torch.from_numpy(np.ascontiguousarray(mask)),
    }


class CubeWindows(IterableDataset):
    """Batches of at most `batch_size` pixels, window after window.

    Windows are shared between processes (rank r of R takes windows r, r + R, ...) and then
    between DataLoader workers; windows in `skip` (already written) are not read. A batch
    holds ts [N, T, C], positions and days [N, T] (days since the season start), mask [N, T],
    pixel [N] (flat index in the window), window (the window number) and window_done (True
    in the window's last batch). A window without any valid pixel yields one empty batch.
    """

    def __init__(self, cube: Cube, window_size: int, batch_size: int, first_day: np.datetime64):
        self.cube = cube
        self.windows = cube.windows(window_size)
        self.batch_size = batch_size
        self.days = (cube.dates - first_day).astype(np.int64)
        self.skip: set[int] = set()
        self.rank, self.world_size = 0, 1

    def assigned(self) -> list[int]:
        """Window numbers this process (and worker) reads."""
        mine = [w for w in range(len(self.windows)) if w % self.world_size == self.rank]
        info = get_worker_info()
        if info is not None:
            mine = mine[info.id :: info.num_workers]
        return [w for w in mine if w not in self.skip]

    def __iter__(self):
        for number in self.assigned():
            values, valid = self.cube.read(self.windows[number])
            series = pixel_series(values, valid)
            total = len(series["pixel"])
            starts = range(0, total, self.batch_size) if total else [0]
            for start in starts:
                part = slice(start, start + self.batch_size)
                yield model_inputs(
                    series["ts"][part], series["mask"][part], series["date"][part], self.days
                ) | {
                    "pixel": torch.from_numpy(series["pixel"][part]),
                    "window": torch.tensor(number),
                    "window_done": torch.tensor(start + self.batch_size >= total),
                }


def _padded(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate pixel series of different widths (T'), padding with invalid dates."""
    width = max(piece["mask"].shape[1] for piece in pieces)
    out = {}
    for key in ("ts", "mask", "date"):
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
    ):
        self.cube, self.windows = cube, windows
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
        width = int(series["mask"].sum(axis=1).max())  # the padding this batch needs
        ts, mask, date = (series[key][:, :width] for key in ("ts", "mask", "date"))
        n = len(mask)
        return model_inputs(ts, mask, date, self.days) | {
            "class": torch.full((n,), -1, dtype=torch.int64),
            "season": torch.full((n,), self.season, dtype=torch.int64),
            "index": torch.from_numpy(series["pixel"].astype(np.int64)),
        }


class _EpochLoader(DataLoader):
    """A DataLoader that tells its `CubePixels` the epoch before each pass, so the draws of a
    run are reproducible (workers copy the dataset when a pass starts)."""

    def __init__(self, dataset: CubePixels, epoch: Callable[[], int], **kwargs):
        super().__init__(dataset, batch_size=None, **kwargs)
        self._epoch = epoch

    def __iter__(self):
        self.dataset.epoch = self._epoch()
        return super().__iter__()


class CubeDataModule(pl.LightningDataModule):
    """A cube as data (see `cmap.data.cube.Cube` for the folder layout): every pixel for
    `predict`, and unlabelled pixels for self-supervised training (`fit` and `validate` with
    the `AutoEncoder`; there are no labels to train a Classifier or to `test`).

    Args:
        cube: the cube folder.
        bands, nodata, scale, quality_band, quality_masked: as in `Cube`; `bands` must be the
            model's input bands, in its order. Defaults from the `meta.yaml` beside or in the
            cube folder (`bands`, `scale`, `nodata`), as for samples.
        season: the season (year it ends) the cube's dates belong to; default: the one whose
            window holds every date.
        season_start, season_length: the season window, as for samples (positions are days
            since its first day).
        window_size: side of the square windows read and written at once (pixels); memory
            is bounded by it (T x C x window_size^2 x 4 bytes) and `batch_size`.
        batch_size: pixels per model call (and per training batch).
        num_workers: DataLoader processes reading windows in parallel.
        val_windows: share of the windows held out for validation when training (at least
            one), drawn with `seed`; whole windows, so validation pixels are not the training
            pixels' neighbours.
        pixels_per_epoch: training pixels per epoch (all processes together); default the
            pixels of the training windows. Validation covers every pixel of its windows
            (the last batch is filled up from the first pixels again).
        seed: seeds the held-out windows and the order of training windows and pixels.
    """

    def __init__(
        self,
        cube: str,
        bands: list[str] | None = None,
        nodata: float | None = None,
        scale: float | None = None,
        quality_band: str | None = None,
        quality_masked: list[int] | None = None,
        season: int | None = None,
        season_start: str | None = None,
        season_length: int = 395,
        window_size: int = 256,
        batch_size: int = 1024,
        num_workers: int = 0,
        val_windows: float = 0.1,
        pixels_per_epoch: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["bands"])  # the model logs the bands it reads
        folder = Path(cube)
        meta = read_meta(folder) or read_meta(folder.parent)
        self.cube = Cube(
            folder,
            bands or meta.get("bands"),
            nodata if nodata is not None else meta.get("nodata"),
            float(scale if scale is not None else meta.get("scale", 1.0)),
            quality_band,
            quality_masked,
        )
        self.window = SeasonWindow(
            str(season_start or meta.get("season_start", "11-01")), season_length
        )
        self.season = season if season is not None else self._infer_season()
        first = self.window.first_day(np.array([self.season]))[0]
        self.first_day = np.datetime64(int(first), "D")
        days = (self.cube.dates - self.first_day).astype(np.int64)
        outside = (days < 0) | (days >= season_length)
        if outside.any():
            raise DataError(
                folder,
                f"{int(outside.sum())} date(s) outside season {self.season} "
                f"({self.first_day} + {season_length} days), e.g. "
                f"{self.cube.dates[outside][0]}",
            )
        if window_size < 16 or window_size % 16:
            raise DataError(None, f"window_size must be a multiple of 16, got {window_size}")
        if not 0 < val_windows < 1:
            raise DataError(None, f"val_windows must be in (0, 1), got {val_windows}")
        self.dataset: CubeWindows | None = None
        self.datasets: dict[str, CubePixels] = {}

    def _infer_season(self) -> int:
        dates = self.cube.dates
        last_year = int(str(dates[-1])[:4])
        for season in (last_year, last_year + 1):
            first = self.window.first_day(np.array([season]))[0]
            days = dates.astype(np.int64) - first
            if days.min() >= 0 and days.max() < self.window.length:
                return season
        raise DataError(
            self.cube.folder,
            f"dates {dates[0]} to {dates[-1]} fit no single season window "
            f"(start {self.window.start}, {self.window.length} days); set season",
        )

    @property
    def bands(self) -> list[str]:
        return self.cube.bands

    @property
    def labelled(self) -> bool:
        """A cube has no labels: its training batches are for self-supervised tasks."""
        return False

    @property
    def channels(self) -> list[str]:
        return self.cube.bands

    @property
    def num_bands(self) -> int:
        return len(self.cube.bands)

    def split_windows(self) -> dict[str, list[Window]]:
        """The windows training and validation draw pixels from (disjoint, seeded)."""
        windows = self.cube.windows(self.hparams.window_size)
        if len(windows) < 2:
            raise DataError(
                self.cube.folder,
                f"is a single window of {self.hparams.window_size} pixels: lower window_size "
                "so that some windows can be held out for validation",
            )
        n_val = min(max(1, round(self.hparams.val_windows * len(windows))), len(windows) - 1)
        held = set(np.random.default_rng(self.hparams.seed).permutation(len(windows))[:n_val])
        return {
            "train": [w for i, w in enumerate(windows) if i not in held],
            "val": [w for i, w in enumerate(windows) if i in held],
        }

    def setup(self, stage: str | None = None):
        if stage in ("fit", "validate"):
            self._setup_pixels(["train", "val"] if stage == "fit" else ["val"])
            return
        if stage not in (None, "predict"):
            raise DataError(
                self.cube.folder, f"a cube has no labels to {stage} with; use a samples folder"
            )
        if self.dataset is None:
            self.dataset = CubeWindows(
                self.cube, self.hparams.window_size, self.hparams.batch_size, self.first_day
            )
        trainer = self.trainer
        if trainer is not None:
            self.dataset.rank, self.dataset.world_size = trainer.global_rank, trainer.world_size

    def _setup_pixels(self, splits: list[str]) -> None:
        trainer = self.trainer
        world = trainer.world_size if trainer else 1
        batch = self.hparams.batch_size
        windows = self.split_windows()
        for split in splits:
            if split in self.datasets:
                continue
            pixels = sum(int(w.width * w.height) for w in windows[split])
            if split == "train" and self.hparams.pixels_per_epoch:
                pixels = self.hparams.pixels_per_epoch
            self.datasets[split] = CubePixels(
                self.cube,
                windows[split],
                batch,
                max(1, math.ceil(pixels / (batch * world))),
                self.first_day,
                self.season,
                shuffle=split == "train",
                seed=self.hparams.seed,
            )
        for dataset in self.datasets.values():
            dataset.rank, dataset.world_size = trainer.global_rank if trainer else 0, world

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer else 0

    def _pixel_loader(self, split: str) -> DataLoader:
        return _EpochLoader(
            self.datasets[split],
            self._current_epoch,
            num_workers=self.hparams.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._pixel_loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._pixel_loader("val")

    def predict_dataloader(self) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            self.dataset,
            batch_size=None,  # the dataset makes the batches
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
        )
