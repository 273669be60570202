"""Cubes from xarray (docs/reference/data_formats.md §2b): NetCDF files or Zarr stores (a
folder, a file or a glob pattern) or Datasets built in memory (e.g. from STAC items), read
window by window onto one grid.

Bands may come from several files and resolutions: the finest grid among the bands read is the
cube's grid and coarser bands are resampled onto it, window by window (`nearest` or
`bilinear`; a quality band always `nearest`). The cube's dates are the days any of its files
observed; a band its files lack on a day is missing there, so that pixel's date is missing.
Several acquisitions on one day are merged: the first valid value wins. Stored values are
scaled as `value x scale + offset`, with scale, offset and nodata taken from the
configuration, else the files' attributes (`scale_factor`, `add_offset`, `_FillValue`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from rasterio.coords import disjoint_bounds
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform

from cmap.data.cubes.quality import quality_rule
from cmap.data.cubes.source import CubeOptions, CubeSource, Opener
from cmap.data.cubes.stac import is_stac, load_stac, unreadable_asset
from cmap.data.layers import Layer, is_stack, layers_of, open_dataset, stack_paths, time_bands
from cmap.errors import ConfigError, DataError, preview

RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear}


def _per_band(value, band: str, default):
    if isinstance(value, dict):
        return value.get(band, default)
    return default if value is None else value


class Stack(CubeSource):
    """A cube from xarray datasets: `source` a NetCDF file, a Zarr store, a folder of them, a
    glob pattern, or Datasets; `options` as in `CubeOptions` (the STAC ones aside). Bands
    default to every (time, y, x) variable when there is one file (several files need the
    bands named); nodata, scale and offset left out take each file's attributes
    (`_FillValue`, `scale_factor`, `add_offset`)."""

    def __init__(
        self,
        source: str | Path | xr.Dataset | list[xr.Dataset],
        options: CubeOptions = CubeOptions(),  # noqa: B008
    ):
        bands, quality_band, resampling = options.bands, options.quality_band, options.resampling
        nodata, scale, offset = options.nodata, options.scale, options.offset
        if resampling not in RESAMPLING:
            raise ConfigError(f"resampling must be one of {list(RESAMPLING)}, got {resampling!r}")
        self.resampling = RESAMPLING[resampling]
        datasets, self.folder = self._datasets(source)
        available = list(dict.fromkeys(b for _, ds, _ in datasets for b in time_bands(ds)))
        if not available:
            raise DataError(self.folder, "holds no variable over (time, y, x) to read as bands")
        if not bands and len(datasets) == 1:
            bands = [b for b in available if b != quality_band]  # as a GeoTIFF cube
        if not bands:
            raise DataError(
                self.folder,
                f"name the bands to read (bands: [...]); the files hold {preview(available, 20)}",
            )
        self.bands = list(bands)
        self.quality_band = quality_band
        self.quality_masked, self.quality_keep = quality_rule(
            quality_band, options.quality_masked, options.quality_keep
        )
        wanted = self.bands + ([quality_band] if quality_band else [])
        unknown = [b for b in wanted if b not in available]
        if unknown:
            raise DataError(
                self.folder, f"unknown band(s) {unknown}; the files hold {preview(available, 20)}"
            )
        self.layers = [
            layer for name, ds, path in datasets for layer in layers_of(ds, name, wanted, path)
        ]
        self.files = sorted({layer.path for layer in self.layers if layer.path is not None})
        self._settings = {
            b: {
                "nodata": _per_band(nodata, b, None),
                "scale": _per_band(scale, b, None),
                "offset": _per_band(offset, b, None),
            }
            for b in self.bands
        }
        self._set_grid()
        self._set_dates(options.time_range)

    # -- set-up --------------------------------------------------------------------------
    @staticmethod
    def _datasets(source) -> tuple[list[tuple], Path]:
        """(name, dataset, path) of each source and the folder to name in messages."""
        if isinstance(source, xr.Dataset):
            source = [source]
        if isinstance(source, list):
            named = [
                (ds.attrs.get("name", f"dataset {k}"), ds, None) for k, ds in enumerate(source)
            ]
            return named, Path(str(source[0].attrs.get("source", "dataset")))
        paths = stack_paths(source)
        root = Path(source) if Path(source).is_dir() else paths[0].parent
        return [(str(p), open_dataset(p), p) for p in paths], root

    def _set_grid(self) -> None:
        """The finest grid among the layers read; every layer must cover it."""
        finest = min(self.layers, key=lambda layer: abs(layer.grid.transform.a))
        self.crs, self.transform = finest.grid.crs, finest.grid.transform
        self.width, self.height = finest.grid.width, finest.grid.height
        bounds = finest.bounds
        for layer in self.layers:
            if layer is finest:
                continue
            mine = (
                transform_bounds(self.crs, layer.grid.crs, *bounds)
                if layer.grid.crs != self.crs
                else bounds
            )
            tolerance = abs(layer.grid.transform.a) / 2
            covers = (
                layer.bounds[0] <= mine[0] + tolerance
                and layer.bounds[1] <= mine[1] + tolerance
                and layer.bounds[2] >= mine[2] - tolerance
                and layer.bounds[3] >= mine[3] - tolerance
            )
            if disjoint_bounds(layer.bounds, mine) or not covers:
                raise DataError(
                    layer.name,
                    f"bands {layer.bands} cover {tuple(round(v, 2) for v in layer.bounds)} "
                    f"({layer.grid.crs}), which does not hold the grid of {finest.name} "
                    f"{tuple(round(v, 2) for v in bounds)}: bands of different extents cannot "
                    "be aligned",
                )
        self.profile = {
            "crs": self.crs,
            "transform": self.transform,
            "width": self.width,
            "height": self.height,
        }

    def _set_dates(self, time_range: list[str] | None) -> None:
        days = np.unique(np.concatenate([layer.days for layer in self.layers]))
        if time_range is not None:
            if len(time_range) != 2:
                raise ConfigError(f"time_range takes [first, last] days, got {time_range}")
            first, last = (np.datetime64(str(d), "D") for d in time_range)
            days = days[(days >= first) & (days <= last)]
            if not len(days):
                raise DataError(self.folder, f"no date in time_range {first} to {last}")
        self.dates = days.astype("datetime64[D]")
        # per layer: its time indices inside the cube's dates, and the cube date of each
        self._times = []
        for layer in self.layers:
            t_cube = np.searchsorted(self.dates, layer.days)
            at = np.minimum(t_cube, len(self.dates) - 1)
            t_index = np.flatnonzero((t_cube < len(self.dates)) & (self.dates[at] == layer.days))
            self._times.append((t_index, t_cube[t_index]))

    # -- reading -------------------------------------------------------------------------
    def _band_setting(self, layer: Layer, band: str, key: str, default):
        own = self._settings.get(band, {}).get(key)
        if own is not None:
            return own
        value = layer.attrs[band][key]
        return default if value is None else value

    def _source_window(self, layer: Layer, window: Window) -> tuple[Window, bool]:
        """The layer's pixels under a cube window (with one pixel of margin for bilinear
        weights when the grids differ), and whether the grids are the same."""
        if layer.grid.crs == self.crs and layer.grid.transform.almost_equals(self.transform):
            return window, True
        left, bottom, right, top = window_bounds(window, self.transform)
        if layer.grid.crs != self.crs:
            left, bottom, right, top = transform_bounds(
                self.crs, layer.grid.crs, left, bottom, right, top
            )
        src = from_bounds(left, bottom, right, top, layer.grid.transform)
        col0 = max(0, math.floor(src.col_off + 1e-6) - 1)
        row0 = max(0, math.floor(src.row_off + 1e-6) - 1)
        col1 = min(layer.grid.width, math.ceil(src.col_off + src.width - 1e-6) + 1)
        row1 = min(layer.grid.height, math.ceil(src.row_off + src.height - 1e-6) + 1)
        return Window(col0, row0, col1 - col0, row1 - row0), False

    def _layer_bands(self, layer: Layer, window: Window, t_index: np.ndarray):
        """A layer's bands at its time indices `t_index`, on the cube's window: yields (band,
        values [Tl, h, w] float32, scaled, NaN where missing), one band in memory at a time."""
        h, w = int(window.height), int(window.width)
        src, same = self._source_window(layer, window)
        rows = slice(int(src.row_off), int(src.row_off + src.height))
        if layer.grid.flip_y:
            rows = slice(layer.grid.height - rows.stop, layer.grid.height - rows.start)
        cols = slice(int(src.col_off), int(src.col_off + src.width))
        t0, t1 = int(t_index.min()), int(t_index.max()) + 1
        part = layer.data().isel(
            {layer.time: slice(t0, t1), layer.grid.y: rows, layer.grid.x: cols}
        )
        for band in layer.bands:
            try:
                with warnings.catch_warnings():  # odc-stac's resampling of coarser assets
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    stored = part[band].transpose(layer.time, layer.grid.y, layer.grid.x).values
            except (OSError, RuntimeError) as err:
                where = unreadable_asset(layer.data(), band) or layer.name
                raise DataError(where, f"band {band} cannot be read ({err})") from err
            raw = stored[t_index - t0] if t1 - t0 != len(t_index) else stored
            if layer.grid.flip_y:
                raw = raw[:, ::-1]
            values = raw.astype(np.float32)
            nodata = self._band_setting(layer, band, "nodata", None)
            if nodata is not None:
                values[raw == nodata] = np.nan
            del stored, raw
            if band != self.quality_band:
                values *= np.float32(self._band_setting(layer, band, "scale", 1.0))
                values += np.float32(self._band_setting(layer, band, "offset", 0.0))
            if same:
                yield band, values
                continue
            out = np.empty((len(t_index), h, w), np.float32)
            reproject(
                values,
                out,
                src_transform=window_transform(src, layer.grid.transform),
                src_crs=layer.grid.crs,
                src_nodata=np.nan,
                dst_transform=window_transform(window, self.transform),
                dst_crs=self.crs,
                dst_nodata=np.nan,
                resampling=Resampling.nearest if band == self.quality_band else self.resampling,
            )
            yield band, out

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Values [T, C, h, w] float32 (scaled) and valid [T, h, w] bool of a window.

        A date is valid at a pixel where every band has a value that is not nodata or NaN and
        the quality band (when set) keeps it. Missing values are 0 in `values`."""
        h, w = int(window.height), int(window.width)
        values = np.full((len(self.dates), len(self.bands), h, w), np.nan, np.float32)
        quality = (
            np.full((len(self.dates), h, w), np.nan, np.float32) if self.quality_band else None
        )
        for layer, (t_index, t_cube) in zip(self.layers, self._times):
            if not len(t_index):
                continue
            for band, data in self._layer_bands(layer, window, t_index):  # [Tl, h, w]
                target = quality if band == self.quality_band else values[:, self.bands.index(band)]
                for k, t in enumerate(t_cube):  # same-day acquisitions: first valid wins
                    np.copyto(target[t], data[k], where=np.isnan(target[t]))
        valid = np.ones((len(self.dates), h, w), bool)
        for c in range(len(self.bands)):
            valid &= ~np.isnan(values[:, c])
        if quality is not None:
            if self.quality_keep is not None:
                valid &= np.isin(quality, self.quality_keep)
            else:
                valid &= ~np.isnan(quality) & ~np.isin(quality, self.quality_masked)
        np.nan_to_num(values, copy=False, nan=0.0)
        return values, valid

    def close(self) -> None:
        for layer in self.layers:
            if layer.path is not None and layer.dataset is not None:
                layer.dataset.close()
                layer.dataset = None

    def source_files(self) -> list[Path]:
        """Every file of the NetCDF files and Zarr stores read (a catalogue: its JSON)."""
        stores = [sorted(q for q in p.rglob("*") if q.is_file()) for p in self.files]
        return [q for p, inner in zip(self.files, stores) for q in inner or [p]]


def open_stac(source: str, options: CubeOptions) -> Stack:
    """A STAC catalogue's items loaded lazily onto one grid, read as a stack."""
    if not options.bands:
        raise ConfigError(f"name the bands to read from the STAC catalogue {source}")
    dataset = load_stac(
        source,
        options.bands,
        options.stac_assets,
        options.crs,
        options.resolution,
        options.bbox,
        options.time_range,
        options.resampling,
        options.quality_band,
        options.bounds,
    )
    stack = Stack(dataset, options)
    stack.files = [Path(source)]  # what a resumed map checks
    return stack


READ = {"bands", "nodata", "scale", "offset", "quality_band", "quality_masked", "quality_keep"}
READ |= {"resampling", "time_range"}
STACK = Opener("NetCDF / Zarr stack", is_stack, Stack, frozenset(READ))
STAC = Opener(
    "STAC catalogue",
    is_stac,
    open_stac,
    frozenset(READ | {"stac_assets", "crs", "resolution", "bbox", "bounds"}),
)
