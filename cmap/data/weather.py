"""Daily weather for thermal positions: the daily mean air temperature of a gridded file (a
NetCDF / Zarr variable over time, y, x, e.g. AgERA5 `temperature_mean`) or of one station (a
parquet table with `date` and the temperature column), as growing degree days at the dates
of a cube's pixels.

Temperatures in kelvin (`units: K`) are turned into degrees Celsius. Missing days (absent or
fill values) are interpolated over gaps of at most `max_gap_days`; a longer gap, or a season
the file does not cover, is an error naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from rasterio.transform import xy
from rasterio.warp import transform as reproject_points
from rasterio.windows import Window

from cmap.data.layers import NETCDF, ZARR, band_attrs, crs_of, open_dataset
from cmap.data.parquet import day_numbers, read_parquet, require_columns, require_numeric
from cmap.errors import DataError, preview

KELVIN = ("K", "k", "kelvin", "Kelvin")


def growing_degree_days(temperature: np.ndarray, base: float) -> np.ndarray:
    """Daily mean temperature along a grid [G] -> cumulative max(0, T - base) [G + 1],
    starting at 0 (GDD between grid days a and b inclusive = out[b + 1] - out[a])."""
    return np.r_[0.0, np.cumsum(np.maximum(temperature.astype(np.float64) - base, 0.0))]


class Weather:
    """Daily temperature (degC) per weather cell: values [D, K] over `days` [D] (every day
    from the first to the last of the file); cell k is row k // len(x), column k % len(x) of
    the cell-centre coordinates `y`, `x` in `crs`.

    Args:
        path: a NetCDF file, Zarr store or parquet table.
        variable: the temperature variable (gridded) or column (table).
        max_gap_days: longest run of missing days filled by linear interpolation.
    """

    def __init__(self, path: str | Path, variable: str = "temperature_mean", max_gap_days: int = 5):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(self.path, "weather file not found")
        if self.path.suffix.lower() in NETCDF + ZARR:
            days, values = self._gridded(variable)
        else:
            days, values = self._table(variable)
        order = np.argsort(days, kind="stable")
        days, values = days[order], values[order]
        if len(np.unique(days)) != len(days):
            raise DataError(self.path, "holds a day twice")
        self.days = np.arange(days[0], days[-1] + 1)
        self.values = np.empty((len(self.days), values.shape[1]), np.float32)
        for k in range(values.shape[1]):
            known = ~np.isnan(values[:, k])
            if not known.any():
                raise DataError(self.path, f"{variable} holds no value at cell {k}")
            have = days[known]
            gaps = np.diff(have.astype(np.int64)) - 1
            if gaps.max(initial=0) > max_gap_days:
                i = int(np.argmax(gaps))
                raise DataError(
                    self.path,
                    f"{variable} misses {int(gaps[i])} days after {have[i]} (at most "
                    f"{max_gap_days} are filled; raise max_gap_days or fill them)",
                )
            self.values[:, k] = np.interp(
                self.days.astype(np.int64), have.astype(np.int64), values[known, k]
            )

    def _gridded(self, variable: str) -> tuple[np.ndarray, np.ndarray]:
        ds = open_dataset(self.path)
        if variable not in ds.data_vars:
            raise DataError(
                self.path, f"has no variable {variable}; it holds {preview(list(ds.data_vars), 12)}"
            )
        array = ds[variable]
        time = next((d for d in array.dims if np.issubdtype(ds[d].dtype, np.datetime64)), None)
        if time is None or array.ndim != 3:
            raise DataError(self.path, f"{variable} must be over (time, y, x), has {array.dims}")
        y, x = (d for d in array.dims if d != time)
        values = array.transpose(time, y, x).values.astype(np.float32)
        attrs = band_attrs(array)
        if attrs["nodata"] is not None:
            values[values == attrs["nodata"]] = np.nan
        values = values * attrs["scale"] + attrs["offset"]
        if str(array.attrs.get("units", "")).strip() in KELVIN:
            values = values - 273.15
        self.x, self.y = ds[x].values.astype(np.float64), ds[y].values.astype(np.float64)
        self.cell = self._cell_size(ds, variable, x, y)
        self.crs = crs_of(ds, variable, str(self.path))
        days = ds[time].values.astype("datetime64[D]")
        return days, values.reshape(len(days), -1)

    def _cell_size(self, ds, variable: str, x: str, y: str) -> tuple[float, float] | None:
        """(width, height) of a cell, from the coordinates or a `resolution` attribute; None
        when neither says (a single cell then covers everything)."""
        steps = []
        for axis in (x, y):
            coords = ds[axis].values.astype(np.float64)
            if len(coords) > 1:
                steps.append(abs(float(coords[1] - coords[0])))
            elif ds[variable].attrs.get("resolution", ds.attrs.get("resolution")) is not None:
                res = ds[variable].attrs.get("resolution", ds.attrs.get("resolution"))
                steps.append(abs(float(np.ravel(res)[0])))
            else:
                return None
        return steps[0], steps[1]

    def _table(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        table = read_parquet(self.path)
        require_columns(table, self.path, ["date", column])
        require_numeric(table, self.path, [column])
        days = day_numbers(table["date"], self.path).astype("datetime64[D]")
        values = table[column].to_numpy(zero_copy_only=False).astype(np.float32)
        self.x = self.y = np.zeros(1)
        self.cell, self.crs = None, None  # one station: every pixel
        return days, values[:, None]

    def cells(self, crs, transform, window: Window) -> np.ndarray:
        """The weather cell of each pixel of a window of a grid [h * w]."""
        rows, cols = np.mgrid[
            window.row_off : window.row_off + window.height,
            window.col_off : window.col_off + window.width,
        ]
        return self.cells_at(crs, transform, rows.ravel(), cols.ravel())

    def cells_at(self, crs, transform, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The weather cell of pixels (rows, cols [P] of a grid): the nearest cell centre; a
        pixel outside every cell is an error."""
        if len(self.x) == 1 and self.cell is None:
            return np.zeros(len(rows), np.int64)
        px, py = xy(transform, rows, cols)
        px, py = np.asarray(px), np.asarray(py)
        if self.crs is not None and crs != self.crs:
            px, py = (np.asarray(v) for v in reproject_points(crs, self.crs, px, py))
        col, dx = _nearest(self.x, px)
        row, dy = _nearest(self.y, py)
        if self.cell is not None:
            outside = (dx > self.cell[0] / 2 + 1e-6) | (dy > self.cell[1] / 2 + 1e-6)
            if outside.any():
                raise DataError(
                    self.path,
                    f"does not cover {int(outside.sum())} pixel(s) of the cube, e.g. "
                    f"({px[outside][0]:.1f}, {py[outside][0]:.1f}) in {self.crs}",
                )
        return row * len(self.x) + col

    def gdd_at(self, first_day: np.datetime64, dates: np.ndarray, base: float) -> np.ndarray:
        """Growing degree days from `first_day` to each of `dates` (inclusive) [T, K]."""
        last = dates.max(initial=first_day)
        if first_day < self.days[0] or last > self.days[-1]:
            raise DataError(
                self.path,
                f"holds daily temperatures from {self.days[0]} to {self.days[-1]}, but the "
                f"season needs {first_day} to {last}",
            )
        start = int((first_day - self.days[0]).astype(np.int64))
        at = (dates - self.days[0]).astype(np.int64)
        table = np.stack(
            [growing_degree_days(self.values[:, k], base) for k in range(self.values.shape[1])], 1
        )
        return (table[at + 1] - table[start]).astype(np.float32)

    def daily_table(
        self, poi_ids: np.ndarray, cells: np.ndarray, first_day: np.datetime64, last_day
    ) -> pa.Table:
        """poi_id, date, temperature (degC) of each point's cell, every day from `first_day`
        to `last_day` (the `<split>/temperatures.pq` of a samples folder)."""
        self.gdd_at(first_day, np.array([last_day], "datetime64[D]"), 0.0)  # coverage check
        days = np.arange(first_day, np.datetime64(last_day, "D") + 1)
        at = (days - self.days[0]).astype(np.int64)
        return pa.table(
            {
                "poi_id": pa.array(np.repeat(poi_ids, len(days))),
                "date": pa.array(np.tile(days, len(poi_ids))),
                "temperature": pa.array(self.values[at][:, cells].T.ravel()),
            }
        )


def _nearest(axis: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest of the cell centres `axis` [K] (either order) to each of
    `values` [P], and the distance to it: one sorted search, no [P, K] table."""
    order = np.argsort(axis)
    ordered = axis[order]
    right = np.clip(np.searchsorted(ordered, values), 1, max(len(axis) - 1, 1))
    left = right - 1 if len(axis) > 1 else np.zeros_like(right)
    right = np.minimum(right, len(axis) - 1)
    pick = np.where(np.abs(values - ordered[left]) <= np.abs(values - ordered[right]), left, right)
    return order[pick], np.abs(values - ordered[pick])
