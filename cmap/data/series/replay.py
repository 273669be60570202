"""Replay for continual season updates: a bounded buffer of earlier seasons' training series
trained on beside the new season's."""

from __future__ import annotations

import numpy as np

from cmap.data.series.sampling import stratified_subset
from cmap.errors import ConfigError


def reservoir(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices a reservoir of `size` holds after a stream of `n` items (Vitter's
    algorithm R, seeded): the first `size` items, then item i replaces a random slot with
    probability size / (i + 1). Every item ends in it with probability size / n."""
    rng = np.random.default_rng(seed)
    held = np.arange(min(size, n))
    if n > size:
        slots = rng.integers(0, np.arange(size + 1, n + 1))  # item i draws from [0, i]
        for i in np.flatnonzero(slots < size) + size:
            held[slots[i - size]] = i
    return np.sort(held)


class Replay:
    """Earlier seasons' training series replayed beside the new season's (continual season
    updates, against forgetting): a reservoir of at most `size` of them, streamed in season
    order, as a buffer filled season after season would hold.

    Args:
        seasons: the earlier seasons (not among the data module's `seasons`, the new ones).
        size: buffer size, in series.
        seed: seed of the reservoir.
    """

    def __init__(self, seasons: list[int], size: int = 500, seed: int = 0):
        if size < 1 or not seasons:
            raise ConfigError(f"Replay needs seasons and a size >= 1, got {seasons}, {size}")
        self.seasons, self.size, self.seed = [int(s) for s in seasons], size, seed


def seasons_to_read(new: list[int] | None, replay: Replay | None, split: str) -> list[int] | None:
    """The seasons a split reads: the new ones, and for training the replayed ones too."""
    if replay is None or split != "train":
        return new
    if not new or set(new) & set(replay.seasons):
        raise ConfigError(
            f"replay of seasons {replay.seasons} needs the data module's `seasons` to name "
            f"the new season(s) only, got {new}"
        )
    return [*new, *replay.seasons]


def training_rows(
    table, fraction: float, cap: int | None, seed: int, replay: Replay | None
) -> np.ndarray:
    """Sorted rows of the training split kept: `fraction` / `cap` of the new seasons' series
    (stratified), and the replay buffer of the earlier seasons' series (in season order)."""
    old = np.isin(table.seasons, replay.seasons) if replay else np.zeros(len(table), bool)
    new = np.flatnonzero(~old)
    new = new[stratified_subset(table.labels[new], fraction, cap, seed)]
    if replay is None:
        return new
    stream = np.flatnonzero(old)
    stream = stream[np.argsort(table.seasons[stream], kind="stable")]
    return np.sort(np.concatenate([new, stream[reservoir(len(stream), replay.size, replay.seed)]]))
