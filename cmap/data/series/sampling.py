"""How many training samples are used and in what batches: stratified sub-sampling and the
automatic batch size."""

from __future__ import annotations

import math

import numpy as np

AUTO_BATCH = (16, 256)  # bounds of batch_size="auto"


def auto_batch_size(series: float) -> int:
    """The largest power of two at most 1/24 of the training `series` a process sees, within
    `AUTO_BATCH`: about 24 optimizer steps per epoch on small datasets."""
    low, high = AUTO_BATCH
    return int(min(max(2 ** math.floor(math.log2(max(series / 24, 1))), low), high))


def stratified_subset(
    labels: np.ndarray, fraction: float, cap: int | None, seed: int
) -> np.ndarray:
    """Sorted indices of the samples kept after keeping `fraction` of each class (at least
    one) and at most `cap` per class, drawn with `seed`."""
    if fraction >= 1 and cap is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        n = max(1, round(len(members) * fraction))
        kept.append(members[: n if cap is None else min(n, cap)])
    return np.sort(np.concatenate(kept))
