"""Prediction over a raster cube: windows read one at a time, batches of valid pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
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
                mask = series["mask"][part]
                days = np.where(mask, self.days[series["date"][part]], 0)
                yield {
                    "ts": torch.from_numpy(np.ascontiguousarray(series["ts"][part])),
                    "positions": torch.from_numpy(days),
                    "days": torch.from_numpy(days.copy()),
                    "mask": torch.from_numpy(mask),
                    "pixel": torch.from_numpy(series["pixel"][part]),
                    "window": torch.tensor(number),
                    "window_done": torch.tensor(start + self.batch_size >= total),
                }


class CubeDataModule(pl.LightningDataModule):
    """Prediction data over a cube (see `cmap.data.cube.Cube` for the folder layout).

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
        batch_size: pixels per model call.
        num_workers: DataLoader processes reading windows in parallel.
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
    ):
        super().__init__()
        self.save_hyperparameters()
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
        self.dataset: CubeWindows | None = None

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
    def channels(self) -> list[str]:
        return self.cube.bands

    @property
    def num_bands(self) -> int:
        return len(self.cube.bands)

    def setup(self, stage: str | None = None):
        if stage not in (None, "predict"):
            raise DataError(None, "a cube serves predictions only; train on a samples folder")
        if self.dataset is None:
            self.dataset = CubeWindows(
                self.cube, self.hparams.window_size, self.hparams.batch_size, self.first_day
            )
        trainer = self.trainer
        if trainer is not None:
            self.dataset.rank, self.dataset.world_size = trainer.global_rank, trainer.world_size

    def predict_dataloader(self) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            self.dataset,
            batch_size=None,  # the dataset makes the batches
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
        )
