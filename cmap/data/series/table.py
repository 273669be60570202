"""`SeriesTable`: every series of one split as flat arrays, samples as slices of rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SeriesTable:
    """All series of one split. R observation rows, S samples, C bands.

    values [R, C] float32 (scaled), dates [R] int32 (days since 1970-01-01),
    starts/lengths [S] int64 (slice of rows of each sample), first_day [S] int32 (season's
    first day), seasons [S] int32, labels [S] int64 (-1 = unlabelled), poi_ids [S].
    values and dates may also be `DiskArray`s left on disk (see `cmap.data.series.cache`).
    """

    values: np.ndarray
    dates: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    first_day: np.ndarray
    seasons: np.ndarray
    labels: np.ndarray
    poi_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def subset(self, keep: np.ndarray) -> SeriesTable:
        """Samples selected by an index or boolean array; observation rows are shared."""
        return SeriesTable(
            self.values,
            self.dates,
            self.starts[keep],
            self.lengths[keep],
            self.first_day[keep],
            self.seasons[keep],
            self.labels[keep],
            self.poi_ids[keep],
        )

    def class_counts(self, classes: list[str]) -> dict[str, int]:
        """Labelled samples per class name."""
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(classes))
        return dict(zip(classes, counts.tolist()))
