"""Map-style dataset over a `SeriesTable` with vectorised batch assembly."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from cmap.data.season import DEFAULT_LENGTH
from cmap.data.series.extras import SampleExtras
from cmap.data.series.table import SeriesTable
from cmap.errors import ConfigError


class SeriesDataset(Dataset):
    """Samples of one split. A batch is built in one vectorised gather (`__getitems__`).

    Batch keys: ts [N, T, C] float32, positions [N, T] int64 (days since season start) or
    float32 (growing degree days since season start, with `extras` holding temperatures),
    days [N, T] int64 (days since season start, whatever the positions),
    mask [N, T] bool (True = valid date), class [N] int64 (-1 = unlabelled),
    season [N] int64, index [N] int64 (sample index in the split). T = longest series of
    the batch, capped at `max_dates` (the most recent dates are dropped beyond it).
    `extras` (see `cmap.data.series.extras`) appends extra channels (e.g. the temperature of each
    acquisition date) after the bands, and/or supplies thermal positions.
    When the observation rows are on disk (cache), each sample's rows are read with one
    positioned read, so resident memory stays bounded on splits larger than RAM.

    Augmentation (training): each valid date is dropped with probability `date_dropout`
    (at least one date is kept) and Gaussian noise of std `noise_std` is added to the valid
    values; `date_sample` keeps at most that many random valid dates of each series (in date
    order), so long series make short, fast batches; `time_shift` moves each series' day
    positions by a random whole number of days in [-time_shift, time_shift] (one per series,
    kept within [0, last_day]), as a season a little earlier or later would. The randomness
    is drawn from (`seed`, the batch's sample indices), so it does not depend on which worker
    builds the batch, and a resumed run draws what the original drew.
    """

    def __init__(
        self,
        table: SeriesTable,
        max_dates: int | None = None,
        date_dropout: float = 0.0,
        noise_std: float = 0.0,
        seed: int = 0,
        extras: SampleExtras | None = None,
        date_sample: int | None = None,
        time_shift: int = 0,
        last_day: int = DEFAULT_LENGTH - 1,
    ):
        if not 0 <= date_dropout < 1:
            raise ConfigError(f"date_dropout must be in [0, 1), got {date_dropout}")
        if date_sample is not None and date_sample < 1:
            raise ConfigError(
                f"date_sample must be at least 1 (null: every date), got {date_sample}"
            )
        self.date_sample = date_sample
        self.time_shift, self.last_day = time_shift, last_day
        self.table = table
        self.max_dates = max_dates
        self.date_dropout = date_dropout
        self.noise_std = noise_std
        self.seed = seed
        self.extras = extras

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        table = self.table
        idx = np.asarray(indices, dtype=np.int64)
        lengths = table.lengths[idx]
        if self.max_dates is not None:
            lengths = np.minimum(lengths, self.max_dates)
        steps = np.arange(max(int(lengths.max(initial=0)), 1))
        mask = steps[None, :] < lengths[:, None]  # [N, T]
        if isinstance(table.values, np.ndarray):
            rows = np.where(mask, table.starts[idx, None] + steps[None, :], 0)  # [N, T]
            ts, dates = table.values[rows], table.dates[rows]  # [N, T, C], [N, T]
        else:  # rows left on disk
            starts = table.starts[idx]
            ts = table.values.read_runs(starts, lengths, len(steps))
            dates = table.dates.read_runs(starts, lengths, len(steps))
        days = np.where(mask, dates - table.first_day[idx, None], 0).astype(np.int64)
        positions = days
        if self.extras is not None:
            channels, gdd = self.extras.gather(idx, dates, mask)
            if channels is not None:
                ts = np.concatenate([ts, channels.astype(ts.dtype)], axis=-1)
            positions = days if gdd is None else gdd
        if self.date_sample is not None and mask.shape[1] > self.date_sample:
            ts, mask, days, positions = self._sample_dates(idx, ts, mask, days, positions)
        if self.date_dropout or self.noise_std:
            mask = self._augment(ts, mask, idx)
            days[~mask] = 0
        ts[~mask] = 0.0
        positions = days.copy() if positions is days else np.where(mask, positions, 0)
        if self.time_shift:
            positions = self._shift(idx, positions, mask)
        return {
            "ts": torch.from_numpy(ts),
            "positions": torch.from_numpy(positions),
            "days": torch.from_numpy(days),
            "mask": torch.from_numpy(mask),
            "class": torch.from_numpy(table.labels[idx]),
            "season": torch.from_numpy(table.seasons[idx].astype(np.int64)),
            "index": torch.from_numpy(idx),
        }

    def _sample_dates(self, idx: np.ndarray, ts, mask, days, positions) -> tuple:
        """ts [N, T, C], mask [N, T], days, positions [N, T] -> the same at T' = date_sample:
        a random subset of each series' valid dates, in date order (padding after them)."""
        rng = np.random.default_rng([self.seed, 1, len(idx), *idx[:8].tolist()])
        score = np.where(mask, rng.random(mask.shape), 2.0)  # padding: never before a date
        pick = np.sort(np.argsort(score, axis=1)[:, : self.date_sample], axis=1)  # [N, T']
        take = [np.take_along_axis(a, pick, axis=1) for a in (mask, days, positions)]
        return (np.take_along_axis(ts, pick[..., None], axis=1), *take)

    def _shift(self, idx: np.ndarray, positions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Day positions [N, T] moved by one random shift per series, within [0, last_day]."""
        rng = np.random.default_rng([self.seed, 2, len(idx), *idx[:8].tolist()])
        shift = rng.integers(-self.time_shift, self.time_shift + 1, size=(len(idx), 1))
        return np.where(mask, np.clip(positions + shift, 0, self.last_day), 0)

    def _augment(self, ts: np.ndarray, mask: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Add noise to ts [N, T, C] in place; return the mask [N, T] after date dropout."""
        rng = np.random.default_rng([self.seed, len(idx), *idx[:8].tolist()])
        if self.date_dropout:
            keep = rng.random(mask.shape) >= self.date_dropout
            emptied = ~(mask & keep).any(axis=1)
            keep[emptied, 0] = True  # date 0 is valid in every series: never leave none
            mask = mask & keep
        if self.noise_std:
            ts += rng.normal(0.0, self.noise_std, ts.shape).astype(ts.dtype)
        return mask


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dataset already returns a padded batch; the DataLoader's collate step is a no-op."""
    return batch


class WeightedDraw(Sampler[int]):
    """Epoch e draws as many series as the dataset holds, with replacement, series i with
    probability proportional to `weights[i]`, from (seed, e); process `rank` of `world`
    takes every world-th draw, so the processes share one draw."""

    def __init__(self, weights: np.ndarray, rank: int, world: int, seed: int):
        self.p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0
        self.per_process = -(-len(self.p) // world)

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it before each epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_process

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        drawn = rng.choice(len(self.p), size=self.per_process * self.world, p=self.p)
        return iter(drawn[self.rank :: self.world].tolist())


def series_loader(
    dataset: SeriesDataset,
    batch_size: int,
    shuffle: bool,
    process: tuple[int, int],
    seed: int,
    workers: int,
    pin_memory: bool,
    class_balance: float = 0.0,
) -> DataLoader:
    """A DataLoader over `dataset`; with `shuffle`, epoch e visits a permutation drawn from
    (seed, e) (with `class_balance` b > 0, a `WeightedDraw` of series of class c with
    weight n_c^-b instead), sharded between the processes (`process` = (rank, world size)),
    and a last batch of one series is left out (batch norm cannot train on one; the next
    epoch's draw leaves out another)."""
    sampler, lone = None, False
    if shuffle:
        rank, world = process
        if class_balance:
            labels = dataset.table.labels  # [N] class index
            weights = np.bincount(labels)[labels] ** -class_balance
            sampler = WeightedDraw(weights, rank, world, seed)
        else:
            sampler = DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed
            )
        lone = len(sampler) % batch_size == 1
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=lone,
        # Iterators draw their workers' base seed from here, not from the global RNG that
        # dropout uses: loading data leaves the model's random stream untouched.
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate_batch,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
    )
