"""LightningDataModule for labelled point / parcel time series (samples layout)."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader

from cmap.data.arguments import check_arguments
from cmap.data.mapping import read_mapping
from cmap.data.meta import Settings, read_meta
from cmap.data.module import CmapDataModule
from cmap.data.season import DEFAULT_LENGTH, Season
from cmap.data.series.cache import cached_split
from cmap.data.series.dataset import SeriesDataset, series_loader
from cmap.data.series.extras import sample_extras
from cmap.data.series.labels import read_labels
from cmap.data.series.replay import Replay, seasons_to_read, training_rows
from cmap.data.series.samples import feature_bands, load_series
from cmap.data.series.sampling import AUTO_BATCH, auto_batch_size
from cmap.data.series.table import SeriesTable
from cmap.errors import ConfigError, DataError, preview

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SITS_CHECKED = ("fraction", "max_per_class", "max_dates", "batch_size", "num_workers", "min_dates")
SITS_CHECKED += ("max_gap_days", "min_span", "class_balance")
SITS_CHECKED += ("date_dropout", "noise_std", "date_sample", "time_shift")


class SITSDataModule(CmapDataModule):
    """Samples folder (`root/{train,val,test}/features.pq|labels.pq`, optional `meta.yaml`).

    Args:
        root: the samples folder.
        bands: band columns to read; default `meta.yaml` `bands`, else every non-key column.
        classes: class names in model order; default `meta.yaml` `classes`, else the sorted
            labels of the training split (after mapping).
        label_mapping: YAML file `class: [codes]` turning raw codes (e.g. RPG) into classes;
            default `meta.yaml` `label_mapping` (relative to root), else labels are classes.
        scale: stored value x scale = reflectance; default `meta.yaml` `scale`, else 1.
        nodata: stored value meaning "missing"; default `meta.yaml` `nodata`, else none.
        value_range: [low, high] every valid value must lie in after scaling (e.g. [-0.1, 1.6]
            for Sentinel-2 L2A reflectance); default `meta.yaml` `value_range`, else no check.
        season_start, season_length, season_year: a season's first day (`MM-DD`), days
            and whether it is named by the year it `end`s in (starting in the year before)
            or `start`s in; defaults `meta.yaml` `season_start` / `season_year`, else 11-01,
            395 days, end.
        seasons: keep only these seasons (all splits).
        replay: also train on a bounded buffer of earlier seasons' series (`Replay`).
        fraction, max_per_class: keep this fraction of the training samples, at most this
            many per class (seeded, stratified by class).
        max_dates: cap on dates per series (the latest are dropped beyond it).
        date_dropout, noise_std, date_sample, time_shift: training augmentation (see
            `SeriesDataset`): probability of hiding each valid date, std of Gaussian noise
            added to the (scaled) values, at most this many random dates per series (long
            series: faster steps), largest random shift of a series' day positions (days).
        class_balance: b: training draws class c with probability ∝ n_c^-b (with replacement,
            seeded per epoch); 0 (default) shuffles, 0.5 square-root, 1 equal classes.
        cache_dir: folder for prepared splits (`cmap.data.series.cache`): written once, then read
            instead of the parquet files, rows left on disk (splits larger than RAM).
        positions: the encoder's date positions: "days" since the season start (default),
            or "gdd", growing degree days since then, sum over days of max(0, T - gdd_base)
            with T the daily mean temperature `temperature`. Batches carry `days` too.
        temperature: `table.column` of the daily mean temperature (degC) in each split
            folder, e.g. `temperatures.temperature` for `<split>/temperatures.pq`.
        gdd_base: base temperature of growing degree days (degC); 0 suits winter cereals
            (and the demo), maize and sunflower are usually given 6-10 degC.
        extra_channels: `table.column` features appended to the bands as input channels,
            valued at each acquisition date (e.g. `temperatures.temperature`).
        max_gap_days: in extra tables, gaps of at most this many missing days are filled by
            linear interpolation; longer gaps are an error.
        labelled: read `labels.pq` (default). False ignores labels (the file may be absent):
            every (point, season) with observations in its season is a sample with
            class -1, for self-supervised pretraining (`AutoEncoder`) on unlabelled series.
        min_dates, min_span: unlabelled seasons with fewer valid dates, or whose dates span
            fewer days (default: half the season length), are fragments and dropped.
        predict_split: split served by `predict_dataloader`.
        batch_size: samples per batch and process, or "auto" (`sampling.auto_batch_size`:
            about 24 steps per epoch, 16 to 256; 256 when there is no training split).
        num_workers, pin_memory: DataLoader settings (pin_memory default: on GPU).
        seed: seeds shuffling, sub-sampling and augmentation. Epoch e's training order is
            drawn from (seed, e), sharded across processes under DDP: runs repeat whatever
            the workers, and a resumed run continues with the interrupted one's order.
    """

    def __init__(
        self,
        root: str,
        bands: list[str] | None = None,
        classes: list[str] | None = None,
        label_mapping: str | None = None,
        scale: float | None = None,
        nodata: float | None = None,
        value_range: list[float] | None = None,
        season_start: str | None = None,
        season_length: int = DEFAULT_LENGTH,
        season_year: Literal["end", "start"] | None = None,
        seasons: list[int] | None = None,
        replay: Replay | None = None,
        fraction: float = 1.0,
        max_per_class: int | None = None,
        max_dates: int | None = None,
        date_dropout: float = 0.0,
        noise_std: float = 0.0,
        date_sample: int | None = None,
        time_shift: int = 0,
        class_balance: float = 0.0,
        cache_dir: str | None = None,
        positions: Literal["days", "gdd"] = "days",
        temperature: str = "temperatures.temperature",
        gdd_base: float = 0.0,
        extra_channels: list[str] | None = None,
        max_gap_days: int = 3,
        labelled: bool = True,
        min_dates: int = 3,
        min_span: int | None = None,
        predict_split: str = "test",
        batch_size: int | Literal["auto"] = "auto",
        num_workers: int = 0,
        pin_memory: bool | None = None,
        seed: int = 0,
    ):
        super().__init__()
        # The task records the resolved classes and bands; logging both would clash.
        self.save_hyperparameters(ignore=["classes", "bands", "replay"])  # replay: an object
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "samples folder not found")
        hp = self.hparams
        check_arguments(**{k: hp[k] for k in SITS_CHECKED}, bands=bands, classes=classes)
        if time_shift and positions == "gdd":
            raise ConfigError("time_shift moves day positions; gdd positions follow the heat")
        self.meta = read_meta(self.root)
        season = (season_start, season_length, season_year)
        settings = Settings(self.meta, bands, scale, nodata, *season)
        if label_mapping is None and self.meta.get("label_mapping"):
            label_mapping = str(self.root / self.meta["label_mapping"])
        self.mapping = read_mapping(label_mapping) if label_mapping else None
        self.scale, self.nodata = settings.scale, settings.nodata
        self.value_range = value_range or self.meta.get("value_range")
        check_arguments(value_range=self.value_range)
        self._season = settings.season
        self._bands = settings.bands
        self._classes, self.replay = classes, replay
        self.seasons = seasons
        self.fraction = fraction
        self.max_per_class = max_per_class
        self.max_dates = max_dates
        self.augment = {"date_dropout": date_dropout, "noise_std": noise_std}
        self.augment |= {"date_sample": date_sample, "time_shift": time_shift, "seed": seed}
        self.class_balance = class_balance
        self.cache_dir = cache_dir
        self.positions = positions
        self.temperature = temperature
        self.gdd_base = gdd_base
        self.extra_channels = list(extra_channels or [])
        self.max_gap_days = max_gap_days
        self._labelled = labelled
        self.min_dates = min_dates
        self.min_span = min_span
        self.predict_split = predict_split
        self.batch_setting = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.datasets: dict[str, SeriesDataset] = {}

    @cached_property
    def bands(self) -> list[str]:
        """Band names read from the features files, in input-channel order."""
        return self._bands or feature_bands(self.root / "train" / "features.pq")

    @cached_property
    def classes(self) -> list[str]:
        """Class names, index = model output."""
        if self._classes or self.meta.get("classes"):
            return [str(c) for c in self._classes or self.meta["classes"]]
        if not self._labelled:
            return []
        names = pc.unique(read_labels(self.root / "train" / "labels.pq")["label"]).to_pylist()
        if self.mapping is not None:
            names = {self.mapping.get(n, "other") for n in names}
        return sorted(names)

    @property
    def labelled(self) -> bool:
        return self._labelled

    @property
    def season(self) -> Season:
        return self._season

    @property
    def channels(self) -> list[str]:
        """Input channels: the bands, then the extra channels."""
        return [*self.bands, *self.extra_channels]

    def class_counts(self, split: str) -> dict[str, int]:
        return self._dataset(split).table.class_counts(self.classes)

    def sample_ids(self, split: str, index: np.ndarray) -> np.ndarray:
        return self._dataset(split).table.poi_ids[np.asarray(index)]

    def source_files(self) -> tuple[Path, list[Path]]:
        files = sorted(p for pattern in ("*.yaml", "*/*.pq") for p in self.root.glob(pattern))
        return self.root, files

    def _dataset(self, split: str) -> SeriesDataset:
        name = self.predict_split if split == "predict" else split
        if name not in self.datasets:
            raise DataError(self.root / name, f"the {split} split is not loaded (setup first)")
        return self.datasets[name]

    @property
    def batch_size(self) -> int:
        """The DataLoader batch size (`batch_size`, with "auto" resolved)."""
        if self.batch_setting != "auto":
            return self.batch_setting
        if "train" not in self.datasets:
            return AUTO_BATCH[1]
        trainer = self.trainer
        return auto_batch_size(len(self.datasets["train"]) / (trainer.world_size if trainer else 1))

    def load_split(self, split: str) -> SeriesTable:
        """Read one split folder, failing clearly when it is absent or empty."""
        folder = self.root / split
        if not folder.is_dir():
            raise DataError(folder, f"split folder '{split}' not found in the samples folder")
        settings = {
            "bands": self.bands,
            "classes": self.classes,
            "season": self.season,
            "scale": self.scale,
            "nodata": self.nodata,
            "mapping": self.mapping,
            "seasons": seasons_to_read(self.seasons, self.replay, split),
            "value_range": self.value_range,
            "labelled": self._labelled,
            "min_dates": self.min_dates,
            "min_span": self.season.length // 2 if self.min_span is None else self.min_span,
        }

        def build() -> SeriesTable:
            return load_series(folder, **settings)

        cache_dir = self.cache_dir
        table = (
            build() if cache_dir is None else cached_split(Path(cache_dir), folder, settings, build)
        )
        if len(table) == 0:
            raise DataError(folder, "no sample left after reading (check seasons and classes)")
        if split == "train":
            table = table.subset(
                training_rows(table, self.fraction, self.max_per_class, self.seed, self.replay)
            )
        log.info("%s: %d samples, classes %s", folder, len(table), table.class_counts(self.classes))
        return table

    def setup(self, stage: str | None = None):
        needed = {
            "fit": ["train", "val"],
            "validate": ["val"],
            "test": ["test"],
            "predict": [self.predict_split],
        }.get(stage, list(SPLITS))
        for split in needed:
            if split not in self.datasets:
                augment = {}
                if split == "train":
                    augment = self.augment | {"last_day": self.season.length - 1}
                table = self.load_split(split)
                self.datasets[split] = SeriesDataset(
                    table, self.max_dates, **augment, extras=self._extras(split, table)
                )
        if "train" in self.datasets and self._labelled:
            missing = [k for k, n in self.class_counts("train").items() if n == 0]
            if missing:
                log.warning("classes without training samples: %s", preview(missing))

    def _extras(self, split: str, table: SeriesTable):
        gdd = self.positions == "gdd"
        if not gdd and not self.extra_channels:
            return None
        temperature = self.temperature if gdd else None
        return sample_extras(
            self.root / split,
            table,
            self.extra_channels,
            temperature,
            self.gdd_base,
            self.max_gap_days,
        )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        return series_loader(
            self.datasets[split],
            self.batch_size,
            shuffle,
            (trainer.global_rank, trainer.world_size) if trainer else (0, 1),
            self.seed,
            self.num_workers,
            torch.cuda.is_available() if self.pin_memory is None else self.pin_memory,
            self.class_balance if self._labelled else 0.0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)
