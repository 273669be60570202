"""What tasks, reports and callbacks know of a data module: one small typed interface."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from rasterio.windows import Window

from cmap.data.season import Season
from cmap.errors import ConfigError

SPLITS = ("train", "val", "test", "predict")


class CmapDataModule(pl.LightningDataModule, abc.ABC):
    """The data side of every cmap task. Tasks, reports and writers use these members and
    nothing else of a data module:

    - `bands` (data bands) and `channels` (model inputs: the bands, then extra channels),
      `classes`, `labelled`, `season` (when seasons start, how long they last) and
      `positions` (what the batches' positions count: "days" or "gdd");
    - `class_counts(split)` and `sample_ids(split, index)` for labelled samples;
    - `mappable`, `map_profile()`, `map_windows()`, `skip_windows(done)` and
      `pending_windows()` for data that can be mapped;
    - `source_files()`, the files that define the data (for the run's fingerprint).

    `split` is one of "train", "val", "test" and "predict".
    """

    positions: str = "days"

    @property
    @abc.abstractmethod
    def bands(self) -> list[str]:
        """Band names, in input-channel order."""

    @property
    def channels(self) -> list[str]:
        """Input channels of the model: the bands, then any extra channel."""
        return self.bands

    @property
    def num_bands(self) -> int:
        """Input width C of the model."""
        return len(self.channels)

    @property
    @abc.abstractmethod
    def classes(self) -> list[str]:
        """Class names, index = model output ([] for unlabelled data)."""

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) or None

    @property
    @abc.abstractmethod
    def labelled(self) -> bool:
        """Whether batches carry classes (False: every class is -1, for pretraining)."""

    @property
    @abc.abstractmethod
    def season(self) -> Season:
        """When a season starts and how long it lasts (batch `days` count from its start)."""

    def class_counts(self, split: str) -> dict[str, int]:
        """Samples per class in `split` (after any sub-sampling)."""
        raise ConfigError(f"{type(self).__name__} has no labelled {split} split to count")

    def sample_ids(self, split: str, index: np.ndarray) -> np.ndarray:
        """Identifiers of the samples at `index` [N] (batch key `index`) of `split`."""
        return np.asarray(index).astype(str)

    @property
    def mappable(self) -> bool:
        """Whether `predict` goes through map windows (the map members below work)."""
        return False

    def map_profile(self) -> dict:
        """Georeferencing of the mapped grid (crs, transform, width, height)."""
        raise ConfigError(f"{type(self).__name__} cannot be mapped; use a CubeDataModule")

    def map_tags(self) -> dict[str, str]:
        """What a map of this data records about it (GeoTIFF tags: the season, the source)."""
        raise ConfigError(f"{type(self).__name__} cannot be mapped; use a CubeDataModule")

    def map_windows(self) -> list[Window]:
        """The windows `predict` goes through, by number (batch key `window`)."""
        raise ConfigError(f"{type(self).__name__} cannot be mapped; use a CubeDataModule")

    def skip_windows(self, done: set[int]) -> None:
        """Leave out these window numbers when predicting (already written)."""
        raise ConfigError(f"{type(self).__name__} cannot be mapped; use a CubeDataModule")

    def pending_windows(self) -> list[int]:
        """Numbers of the windows this process still predicts."""
        raise ConfigError(f"{type(self).__name__} cannot be mapped; use a CubeDataModule")

    def source_files(self) -> tuple[Path, list[Path]] | None:
        """(root folder, the files under it that define the data), or None."""
        return None
