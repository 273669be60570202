"""Thermal positions of cube pixels: growing degree days since the season start at each date,
from the daily temperature of the weather cell each pixel lies in."""

from __future__ import annotations

import numpy as np
from rasterio.windows import Window

from cmap.data.weather import Weather


class ThermalPositions:
    """Growing degree days of a cube's pixels (see `Weather`).

    Args:
        weather: the daily temperatures.
        grid: the cube (its `crs`, `transform` and `dates`).
        first_day: the season's first day.
        base: base temperature (degC).
    """

    def __init__(self, weather: Weather, grid, first_day: np.datetime64, base: float):
        self.weather, self.crs, self.transform = weather, grid.crs, grid.transform
        self.table = weather.gdd_at(first_day, grid.dates, base)  # [T, K]

    def __call__(
        self, window: Window, pixel: np.ndarray, date: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """Pixels [N] (flat index in `window`), date index [N, T] into the cube's dates and
        mask [N, T] -> growing degree days [N, T] float32 (0 at padding)."""
        cells = self.weather.cells(self.crs, self.transform, window)[pixel]
        return np.where(mask, self.table[date, cells[:, None]], 0).astype(np.float32)
