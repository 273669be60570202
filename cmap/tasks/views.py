"""Seeded augmentations of irregular series, composed into the views of multi-view
self-supervision (`Contrastive`).

A view is a dict of ts [N, T, C], positions [N, T], days [N, T] and mask [N, T] (True =
valid date). Every random number an augmentation draws is a hash of (its seed, the series'
`index`, the epoch, the view number, the date or band), not a draw from a shared stream: the
same seed gives the same views whatever the batch composition, the loader order or the number
of workers, and each augmentation's seed can be fixed on its own.
"""

from __future__ import annotations

import abc
import zlib

import numpy as np
import torch

from cmap.errors import ConfigError

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: uint64 -> well-spread uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(
    seed: int, index: torch.Tensor, epoch: int, view: int, size: int, stream: int = 0
) -> torch.Tensor:
    """Counter-based uniform numbers in [0, 1): [N, size] for the series `index` [N], the same
    for the same (seed, index, epoch, view, stream) wherever and in whatever order drawn."""
    with np.errstate(over="ignore"):
        key = np.uint64(0)
        for part in (seed, epoch, view, stream):
            key = _mix(key ^ (np.uint64(part & 0xFFFFFFFFFFFFFFFF) + GOLDEN))
        rows = _mix(key ^ (index.cpu().numpy().astype(np.uint64) * GOLDEN))  # [N]
        cols = np.arange(1, size + 1, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03)
        bits = _mix(rows[:, None] ^ cols[None, :])
    numbers = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return torch.from_numpy(numbers).to(index.device, torch.float32)


def normal(seed, index, epoch, view, size, stream=0) -> torch.Tensor:
    """Standard normal numbers [N, size] (Box-Muller on two counter-based streams)."""
    u1 = uniform(seed, index, epoch, view, size, 2 * stream + 1).clamp(min=1e-7)
    u2 = uniform(seed, index, epoch, view, size, 2 * stream + 2)
    return (-2 * u1.log()).sqrt() * torch.cos(2 * torch.pi * u2)


def _ranks(mask: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Rank [N, T] of each valid date in the order of `draws` (padded dates rank last)."""
    return draws.masked_fill(~mask, 2.0).argsort(dim=1).argsort(dim=1)


def _keep(view: dict, keep: torch.Tensor) -> dict:
    """`view` with only the dates of `keep` [N, T] (a subset of its mask) valid; values at the
    other dates are zeroed as the data modules do for padding."""
    mask = view["mask"] & keep
    return view | {
        "mask": mask,
        "ts": view["ts"].masked_fill(~mask[..., None], 0.0),
        "positions": view["positions"].masked_fill(~mask, 0),
        "days": view["days"].masked_fill(~mask, 0),
    }


class SeriesAugmentation(abc.ABC):
    """One seeded augmentation: `__call__(view, index, epoch, view_number) -> view`.

    `seed` None takes the run's seed (`seed_everything`) when the task starts.
    """

    seed: int | None = None

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def draw(self, index, epoch, view_number, size, normal_=False) -> torch.Tensor:
        """[N, size] numbers of this augmentation (its own stream: kinds differ even with
        the same seed)."""
        draw = normal if normal_ else uniform
        seed = self.seed if self.seed is not None else torch.initial_seed()
        return draw(seed, index, epoch, view_number, size, zlib.crc32(type(self).__name__.encode()))

    @abc.abstractmethod
    def __call__(self, view: dict, index: torch.Tensor, epoch: int, view_number: int) -> dict:
        """The view with this augmentation applied (same shapes)."""


class DateSubset(SeriesAugmentation):
    """Keeps a random `keep` share of each series' valid dates (rounded; at least
    `min_dates`, or all a shorter series has)."""

    def __init__(self, keep: float = 0.6, min_dates: int = 2, seed: int | None = None):
        super().__init__(seed)
        if not 0 < keep <= 1:
            raise ConfigError(f"DateSubset needs 0 < keep <= 1, got {keep}")
        self.keep, self.min_dates = keep, min_dates

    def __call__(self, view, index, epoch, view_number):
        mask = view["mask"]
        valid = mask.sum(dim=1, keepdim=True)
        count = torch.maximum(torch.round(valid * self.keep), valid.clamp(max=self.min_dates))
        draws = self.draw(index, epoch, view_number, mask.shape[1])
        return _keep(view, _ranks(mask, draws) < count)


class TimeCrop(SeriesAugmentation):
    """Keeps one run of consecutive valid dates (in date order), `share` of them (rounded, at
    least one), starting at a random place: a crop in time."""

    def __init__(self, share: float = 0.7, seed: int | None = None):
        super().__init__(seed)
        if not 0 < share <= 1:
            raise ConfigError(f"TimeCrop needs 0 < share <= 1, got {share}")
        self.share = share

    def __call__(self, view, index, epoch, view_number):
        mask = view["mask"]
        valid = mask.sum(dim=1, keepdim=True)
        count = torch.round(valid * self.share).clamp(min=1)
        by_day = view["days"].double().masked_fill(~mask, torch.inf)
        rank = by_day.argsort(dim=1).argsort(dim=1)  # order of the valid dates in time
        start = (self.draw(index, epoch, view_number, 1) * (valid - count + 1)).floor()
        return _keep(view, (rank >= start) & (rank < start + count))


class GaussianNoise(SeriesAugmentation):
    """Adds N(0, std^2) noise to every band at every valid date."""

    def __init__(self, std: float = 0.01, seed: int | None = None):
        super().__init__(seed)
        if std < 0:
            raise ConfigError(f"GaussianNoise needs std >= 0, got {std}")
        self.std = std

    def __call__(self, view, index, epoch, view_number):
        ts, mask = view["ts"], view["mask"]
        n, t, c = ts.shape
        noise = self.draw(index, epoch, view_number, t * c, normal_=True).view(n, t, c)
        return view | {"ts": (ts + self.std * noise).masked_fill(~mask[..., None], 0.0)}


class BandScale(SeriesAugmentation):
    """Multiplies each band of a series by 1 + N(0, std^2) (one factor per series and band,
    as a change of illumination or calibration would)."""

    def __init__(self, std: float = 0.1, seed: int | None = None):
        super().__init__(seed)
        if std < 0:
            raise ConfigError(f"BandScale needs std >= 0, got {std}")
        self.std = std

    def __call__(self, view, index, epoch, view_number):
        ts = view["ts"]
        factor = 1 + self.std * self.draw(index, epoch, view_number, ts.shape[-1], normal_=True)
        return view | {"ts": ts * factor[:, None, :]}


class DateJitter(SeriesAugmentation):
    """Moves each valid date by a whole number of days drawn in [-days, days] (never before
    the season start). Thermal positions move by the series' mean degree days per day."""

    def __init__(self, days: int = 5, seed: int | None = None):
        super().__init__(seed)
        if days < 0:
            raise ConfigError(f"DateJitter needs days >= 0, got {days}")
        self.days = days

    def __call__(self, view, index, epoch, view_number):
        mask, days, positions = view["mask"], view["days"], view["positions"]
        draws = self.draw(index, epoch, view_number, mask.shape[1])
        shift = (draws * (2 * self.days + 1)).floor().long() - self.days  # [N, T]
        moved = (days + shift).clamp(min=0).masked_fill(~mask, 0)
        if positions.is_floating_point():  # growing degree days: scale by the series' rate
            rate = positions.amax(dim=1, keepdim=True) / days.amax(dim=1, keepdim=True).clamp(min=1)
            positions = (positions + (moved - days) * rate).clamp(min=0).masked_fill(~mask, 0)
        else:
            positions = moved
        return view | {"days": moved, "positions": positions}


def make_view(augmentations: list[SeriesAugmentation], batch: dict, epoch: int, number: int):
    """The view `number` of a batch: its model inputs through every augmentation in turn."""
    view = {k: batch[k] for k in ("ts", "positions", "days", "mask")}
    for augmentation in augmentations:
        view = augmentation(view, batch["index"], epoch, number)
    return view
