"""Every pixel of a cube, window after window, for prediction and map writing."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.pixels import model_inputs, pixel_series
from cmap.data.thermal import ThermalPositions


class CubeWindows(IterableDataset):
    """Batches of at most `batch_size` pixels, window after window.

    Windows are shared between processes (rank r of R takes windows r, r + R, ...) and then
    between DataLoader workers; windows in `skip` (already written) are not read. A window's
    pixels are batched longest series first, so that similar lengths share a batch, padded
    only to its own longest (the writer places pixels by `pixel`). A batch holds ts
    [N, T, C], positions and days [N, T] (days since the season start; `thermal` makes the
    positions growing degree days), mask [N, T], pixel [N] (flat index in the window),
    window (the window number) and window_done (True in the window's last batch). A window
    without any valid pixel yields one empty batch.
    """

    def __init__(
        self,
        cube: Cube,
        window_size: int,
        batch_size: int,
        first_day: np.datetime64,
        thermal: ThermalPositions | None = None,
        window_offset: int = 0,
    ):
        self.cube, self.thermal = cube, thermal
        self.windows = cube.windows(window_size, window_offset)
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
            window = self.windows[number]
            series = pixel_series(*self.cube.read(window))
            if self.thermal is not None:
                series["gdd"] = self.thermal(
                    window, series["pixel"], series["date"], series["mask"]
                )
            longest = np.argsort(-series["mask"].sum(axis=1), kind="stable")
            series = {key: value[longest] for key, value in series.items()}
            total = len(series["pixel"])
            starts = range(0, total, self.batch_size) if total else [0]
            for start in starts:
                part = slice(start, start + self.batch_size)
                gdd = series["gdd"][part] if self.thermal is not None else None
                yield model_inputs(
                    series["ts"][part], series["mask"][part], series["date"][part], self.days, gdd
                ) | {
                    "pixel": torch.from_numpy(series["pixel"][part]),
                    "window": torch.tensor(number),
                    "window_done": torch.tensor(start + self.batch_size >= total),
                }
