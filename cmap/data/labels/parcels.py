"""Per-parcel samples: the series of a parcel is, at each date, the mean (or median) of its
pixels valid on that date, so one field is one sample instead of hundreds of near-copies."""

from __future__ import annotations

import numpy as np

from cmap.errors import DataError, preview


def _medians(values: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """Median of `values` [R] per key (0 .. n - 1, each present) [n]."""
    order = np.lexsort((values, key))
    ordered, counts = values[order], np.bincount(key, minlength=n)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    low, high = starts + (counts - 1) // 2, starts + counts // 2
    return (ordered[low] + ordered[high]) / 2


def parcel_series(samples: dict, rows: dict, how: str) -> tuple[dict, dict]:
    """Pixel samples (row, col, label, poi_id, group [P]) and their observations (sample,
    date [R], values [R, C]) -> one sample per group, observed on each date any of its
    pixels was, with the `mean` or `median` of those pixels' values."""
    groups, first, group_of = np.unique(samples["group"], return_index=True, return_inverse=True)
    if samples["label"] is not None:
        labels = samples["label"]
        mixed = labels != labels[first][group_of]
        if mixed.any():
            bad = np.unique(samples["group"][mixed])
            raise DataError(
                None,
                f"{len(bad)} parcel(s) hold pixels of several labels, e.g. {preview(bad)}; "
                "per-parcel series need one label per parcel",
            )
    group = group_of[rows["sample"]]
    days = rows["date"].astype("datetime64[D]").astype(np.int64)
    keys, key = np.unique(np.stack([group, days], 1), axis=0, return_inverse=True)
    key = key.ravel()
    values = rows["values"].astype(np.float64)
    if how == "mean":
        counts = np.bincount(key, minlength=len(keys))
        out = np.stack(
            [np.bincount(key, values[:, j], len(keys)) / counts for j in range(values.shape[1])], 1
        )
    else:
        out = np.stack([_medians(values[:, j], key, len(keys)) for j in range(values.shape[1])], 1)
    parcels = {
        "row": samples["row"][first],
        "col": samples["col"][first],
        "label": None if samples["label"] is None else samples["label"][first],
        "poi_id": groups.astype(str),
        "group": groups.astype(str),
    }
    observations = {
        "sample": keys[:, 0],
        "date": keys[:, 1].astype("datetime64[D]"),
        "values": out.astype(np.float32),
    }
    return parcels, observations
