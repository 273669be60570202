"""Raster cubes as data: every pixel for prediction (window by window, see
`cmap.data.cubes.window_dataset`) and unlabelled pixels for self-supervised pretraining
(drawn from shuffled windows, some windows held out for validation; see
`cmap.data.cubes.pixel_dataset`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import DataLoader

from cmap.data.arguments import check_arguments
from cmap.data.cubes.pixel_dataset import CubePixels, EpochLoader
from cmap.data.cubes.source import CubeOptions, open_cube
from cmap.data.cubes.window_dataset import CubeWindows
from cmap.data.module import CmapDataModule
from cmap.data.season import DEFAULT_LENGTH, Season
from cmap.data.thermal import ThermalPositions
from cmap.data.weather import Weather
from cmap.errors import ConfigError, DataError


class CubeDataModule(CmapDataModule):
    """A cube as data: every pixel for `predict`, and unlabelled pixels for self-supervised
    training (`fit` and `validate` with the `AutoEncoder`; there are no labels to train a
    Classifier or to `test`).

    Args:
        cube: a folder of GeoTIFFs (`cmap.data.cubes.geotiff.Cube`), NetCDF files / Zarr
            stores (one, a folder of them or a glob pattern: `cmap.data.cubes.stack.Stack`)
            or a STAC catalogue's JSON (`cmap.data.cubes.stac`).
        bands, nodata, scale, offset, quality_band, quality_masked, quality_keep, resampling,
            stac_assets, crs, resolution, bbox, bounds, time_range: how the cube is read, as
            `CubeOptions` says (kept as `options`); `bands` are put in the model's order by
            name, and `bands`, `scale` and `nodata` default to the `meta.yaml` beside or in
            the cube folder, as for samples.
        year: the season of the cube's dates; default: the one holding every date.
        season_start, season_length, season_year: when seasons start, how long they last
            and which year names them, as for samples (positions are days since the
            season's first day).
        positions: "days" since the season start, or "gdd": growing degree days since the
            season start, from the daily mean temperature of `weather` at each pixel.
        weather, weather_variable: daily temperature for "gdd" (`Weather`): a NetCDF / Zarr
            variable over (time, y, x), e.g. AgERA5, or a station's parquet column.
        gdd_base: base temperature of growing degree days (degC).
        window_size: side of the square windows read and written at once (pixels); memory
            is bounded by it (T x C x window_size^2 x 4 bytes) and `batch_size`.
        window_offset: start the windows of a map this many pixels in (narrower first row
            and column): a map must not depend on where its windows fall.
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
        nodata: float | dict[str, float] | None = None,
        scale: float | dict[str, float] | None = None,
        offset: float | dict[str, float] | None = None,
        quality_band: str | None = None,
        quality_masked: list[int] | None = None,
        quality_keep: list[int] | None = None,
        resampling: Literal["nearest", "bilinear"] = "nearest",
        stac_assets: dict[str, str] | None = None,
        crs: str | None = None,
        resolution: float | None = None,
        bbox: list[float] | None = None,
        bounds: list[float] | None = None,
        time_range: list[str] | None = None,
        year: int | None = None,
        season_start: str | None = None,
        season_length: int = DEFAULT_LENGTH,
        season_year: Literal["end", "start"] | None = None,
        positions: Literal["days", "gdd"] = "days",
        weather: str | None = None,
        weather_variable: str = "temperature_mean",
        gdd_base: float = 0.0,
        window_size: int = 256,
        window_offset: int = 0,
        batch_size: int = 1024,
        num_workers: int = 0,
        val_windows: float = 0.1,
        pixels_per_epoch: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["bands"])  # the model logs the bands it reads
        folder = Path(cube)
        self.options = CubeOptions(
            bands,
            nodata,
            scale,
            offset,
            quality_band,
            quality_masked,
            quality_keep,
            resampling,
            stac_assets,
            crs,
            resolution,
            bbox,
            time_range,
            bounds,
        )
        self.cube, self._season = open_cube(
            cube, self.options, season_start, season_length, season_year, year
        )
        self.year = year if year is not None else self._infer_year()
        self.first_day = np.datetime64(self._season.first_date(self.year), "D")
        days = (self.cube.dates - self.first_day).astype(np.int64)
        outside = (days < 0) | (days >= self._season.length)
        if outside.any():
            raise DataError(
                folder,
                f"{int(outside.sum())} date(s) outside season {self.year} "
                f"({self.first_day} + {self._season.length} days), e.g. "
                f"{self.cube.dates[outside][0]}",
            )
        check_arguments(
            bands=bands,
            window_size=window_size,
            window_offset=window_offset,
            val_windows=val_windows,
            batch_size=batch_size,
            num_workers=num_workers,
            pixels_per_epoch=pixels_per_epoch,
        )
        self.positions = positions
        self.window_size = window_size
        self.window_offset = window_offset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_windows = val_windows
        self.pixels_per_epoch = pixels_per_epoch
        self.seed = seed
        self.thermal = None
        if positions == "gdd":
            if weather is None:
                raise ConfigError("positions: gdd needs weather (a daily temperature file)")
            thermal = Weather(weather, weather_variable)
            self.thermal = ThermalPositions(thermal, self.cube, self.first_day, gdd_base)
        elif weather is not None:
            raise ConfigError("weather is read for positions: gdd; positions are days here")
        self.dataset: CubeWindows | None = None
        self.datasets: dict[str, CubePixels] = {}

    def _infer_year(self) -> int:
        dates, season = self.cube.dates, self._season
        last_year = int(str(dates[-1])[:4])
        for year in (last_year - 1, last_year, last_year + 1):
            days = dates.astype(np.int64) - season.first_day(np.array([year]))[0]
            if days.min() >= 0 and days.max() < season.length:
                return year
        raise DataError(
            self.cube.folder,
            f"dates {dates[0]} to {dates[-1]} fit no single season "
            f"(start {season.start}, {season.length} days); set year",
        )

    @property
    def bands(self) -> list[str]:
        return self.cube.bands

    @property
    def classes(self) -> list[str]:
        return []

    @property
    def labelled(self) -> bool:
        """A cube has no labels: its training batches are for self-supervised tasks."""
        return False

    @property
    def season(self) -> Season:
        return self._season

    @property
    def mappable(self) -> bool:
        return True

    def map_profile(self) -> dict:
        return self.cube.profile

    def map_tags(self) -> dict[str, str]:
        last = self.first_day + np.timedelta64(self._season.length - 1, "D")
        dates = f"{self.first_day}/{last}"
        return {"SEASON": str(self.year), "SEASON_DATES": dates, "SOURCE": str(self.cube.folder)}

    def map_windows(self) -> list[Window]:
        self.setup("predict")
        return self.dataset.windows

    def skip_windows(self, done: set[int]) -> None:
        self.setup("predict")
        self.dataset.skip = set(done)

    def pending_windows(self) -> list[int]:
        """Numbers of the windows this process still predicts."""
        self.setup("predict")
        return self.dataset.assigned()

    def source_files(self) -> tuple[Path, list[Path]]:
        return self.cube.folder, self.cube.source_files()

    def split_windows(self) -> dict[str, list[Window]]:
        """The windows training and validation draw pixels from (disjoint, seeded)."""
        windows = self.cube.windows(self.window_size)
        if len(windows) < 2:
            raise DataError(
                self.cube.folder,
                f"is a single window of {self.window_size} pixels: lower window_size "
                "so that some windows can be held out for validation",
            )
        n_val = min(max(1, round(self.val_windows * len(windows))), len(windows) - 1)
        held = set(np.random.default_rng(self.seed).permutation(len(windows))[:n_val])
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
                self.cube,
                self.window_size,
                self.batch_size,
                self.first_day,
                self.thermal,
                self.window_offset,
            )
        trainer = self.trainer
        if trainer is not None:
            self.dataset.rank, self.dataset.world_size = trainer.global_rank, trainer.world_size

    def _setup_pixels(self, splits: list[str]) -> None:
        trainer = self.trainer
        world = trainer.world_size if trainer else 1
        batch = self.batch_size
        windows = self.split_windows()
        for split in splits:
            if split in self.datasets:
                continue
            pixels = sum(int(w.width * w.height) for w in windows[split])
            if split == "train" and self.pixels_per_epoch:
                pixels = self.pixels_per_epoch
            self.datasets[split] = CubePixels(
                self.cube,
                windows[split],
                batch,
                max(1, math.ceil(pixels / (batch * world))),
                self.first_day,
                self.year,
                shuffle=split == "train",
                seed=self.seed,
                thermal=self.thermal,
            )
        for dataset in self.datasets.values():
            dataset.rank, dataset.world_size = trainer.global_rank if trainer else 0, world

    def _pixel_loader(self, split: str) -> DataLoader:
        return EpochLoader(
            self.datasets[split],
            lambda: self.trainer.current_epoch if self.trainer else 0,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._pixel_loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._pixel_loader("val")

    def predict_dataloader(self) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            self.dataset,
            batch_size=None,  # the dataset makes the batches
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
        )
