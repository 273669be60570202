"""xarray datasets as cube layers: one NetCDF file, Zarr store or in-memory Dataset (e.g.
loaded from STAC items) whose variables are bands over (time, y, x), with its pixel grid,
CRS, days and per-band scale, offset and nodata read from its attributes."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from cmap.errors import DataError, preview

NETCDF = (".nc", ".nc4", ".cdf", ".h5", ".hdf5")
ZARR = (".zarr",)
X_NAMES, Y_NAMES = ("x", "lon", "longitude"), ("y", "lat", "latitude")


def is_stack(source: str | Path) -> bool:
    """True when `source` names NetCDF / Zarr data (a file, a store, a glob pattern, or a
    folder holding such files and no GeoTIFF)."""
    path = Path(source)
    if path.suffix.lower() in NETCDF + ZARR or glob.has_magic(str(source)):
        return True
    if not path.is_dir():
        return False
    names = [p.suffix.lower() for p in path.iterdir()]
    return any(n in NETCDF + ZARR for n in names) and not any(n in (".tif", ".tiff") for n in names)


def stack_paths(source: str | Path) -> list[Path]:
    """The NetCDF files and Zarr stores a source names, sorted."""
    text = str(source)
    if glob.has_magic(text):
        paths = [Path(p) for p in sorted(glob.glob(text))]
        if not paths:
            raise DataError(source, "matches no file")
    elif Path(text).is_dir() and Path(text).suffix.lower() not in ZARR:
        paths = sorted(p for p in Path(text).iterdir() if p.suffix.lower() in NETCDF + ZARR)
        if not paths:
            raise DataError(source, "holds no NetCDF (.nc) file or Zarr (.zarr) store")
    elif Path(text).exists():
        paths = [Path(text)]
    else:
        raise DataError(source, "not found")
    return paths


def open_dataset(path: Path) -> xr.Dataset:
    """A file opened lazily with its stored values (no masking or scaling by xarray: the
    uint16 fill values of Sentinel-2 stacks break its decoding; cmap applies them)."""
    zarr = path.suffix.lower() in ZARR
    try:
        return xr.open_dataset(
            path,
            engine="zarr" if zarr else "h5netcdf",
            mask_and_scale=False,
            chunks=None,
            cache=False,
        )
    except (OSError, ValueError, KeyError) as err:
        kind = "a Zarr store" if zarr else "NetCDF-4"
        raise DataError(path, f"cannot be read as {kind} ({err})") from err


def crs_of(ds: xr.Dataset, band: str, name: str) -> CRS:
    """The CRS of a band: its CF grid-mapping variable (crs_wkt / spatial_ref, as written by
    rioxarray, odc-geo and GDAL), else a `crs` or `epsg` attribute."""
    mapping = ds[band].attrs.get("grid_mapping") or ds.attrs.get("grid_mapping") or "spatial_ref"
    candidates = []
    if mapping in ds.variables:
        attrs = ds[mapping].attrs
        candidates += [attrs.get("crs_wkt"), attrs.get("spatial_ref")]
    for attrs in (ds[band].attrs, ds.attrs):
        candidates += [attrs.get("crs")]
        if attrs.get("epsg") is not None:
            candidates.append(f"EPSG:{int(attrs['epsg'])}")
    for text in candidates:
        if text:
            try:
                return CRS.from_user_input(str(text).replace("+init=", ""))
            except CRSError:
                continue
    raise DataError(
        name,
        f"band {band} has no CRS: cmap reads a grid-mapping variable with crs_wkt (CF), or "
        "a crs or epsg attribute",
    )


def _axis(ds: xr.Dataset, names: tuple[str, ...], band: str, where: str) -> str:
    for dim in ds[band].dims:
        if dim.lower() in names:
            return dim
    raise DataError(where, f"band {band} has no {names[0]} dimension (dims {ds[band].dims})")


def _step(coords: np.ndarray, axis: str, band: str, where: str) -> float:
    if len(coords) < 2:
        raise DataError(where, f"band {band}: one pixel along {axis}, so no pixel size to read")
    steps = np.diff(coords)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9 * abs(steps[0])):
        raise DataError(
            where,
            f"band {band}: {axis} coordinates are not evenly spaced (steps "
            f"{steps.min():g} to {steps.max():g}); cmap reads regular grids",
        )
    return float(steps[0])


@dataclass
class Grid:
    """Where a variable's pixels lie: its y and x dimensions, CRS and north-up transform."""

    y: str
    x: str
    crs: CRS
    transform: Affine
    width: int
    height: int
    flip_y: bool  # rows stored south to north


@dataclass
class Layer:
    """The bands one dataset holds, on its own grid, over its own days (several acquisitions
    on one day are merged when read: the first valid value wins)."""

    name: str  # file path or a label for messages
    dataset: xr.Dataset | None  # None once pickled; reopened from `path`
    path: Path | None
    bands: list[str]
    time: str
    grid: Grid
    days: np.ndarray  # [Tl] datetime64[D], one per time index
    attrs: dict[str, dict] = field(default_factory=dict)  # band -> scale, offset, nodata

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.grid.transform * (0, 0)
        right, bottom = self.grid.transform * (self.grid.width, self.grid.height)
        return left, bottom, right, top

    def data(self) -> xr.Dataset:
        if self.dataset is None:
            self.dataset = open_dataset(self.path)
        return self.dataset

    def __getstate__(self):  # open files stay with their process (DataLoader workers)
        return self.__dict__ | ({"dataset": None} if self.path is not None else {})


def band_attrs(variable: xr.DataArray) -> dict:
    """Scale, offset and nodata a variable's attributes declare (CF names first)."""
    attrs, encoding = variable.attrs, variable.encoding
    nodata = None
    for key in ("_FillValue", "missing_value", "nodata", "NoData", "nodatavals"):
        value = attrs.get(key, encoding.get(key))
        if value is not None:
            nodata = float(np.ravel(value)[0])
            break
    return {
        "scale": float(attrs.get("scale_factor", 1.0)),
        "offset": float(attrs.get("add_offset", 0.0)),
        "nodata": nodata,
    }


def grid_of(ds: xr.Dataset, band: str, name: str) -> Grid:
    """The regular grid of a variable, from its x / y pixel-centre coordinates."""
    y, x = _axis(ds, Y_NAMES, band, name), _axis(ds, X_NAMES, band, name)
    xs, ys = ds[x].values.astype(np.float64), ds[y].values.astype(np.float64)
    dx, dy = _step(xs, x, band, name), _step(ys, y, band, name)
    if dx < 0:
        raise DataError(name, f"band {band}: x runs east to west; cmap reads east-going x")
    top = ys[-1] if dy > 0 else ys[0]
    transform = Affine(dx, 0, xs[0] - dx / 2, 0, -abs(dy), top + abs(dy) / 2)
    return Grid(y, x, crs_of(ds, band, name), transform, len(xs), len(ys), dy > 0)


def time_bands(ds: xr.Dataset) -> dict[str, str]:
    """A dataset's (time, y, x) variables -> their time dimension (static layers such as
    labels, and per-date scalars such as sun angles, are not bands)."""
    times = [d for d in ds.dims if np.issubdtype(ds[d].dtype, np.datetime64)]
    found = {}
    for band in ds.data_vars:
        dims = ds[band].dims
        time = next((d for d in dims if d in times), None)
        if time is not None and len(dims) == 3:
            found[str(band)] = time
    return found


def layers_of(ds: xr.Dataset, name: str, wanted: list[str], path: Path | None = None):
    """The `wanted` bands a dataset holds, grouped by grid (usually one layer per file)."""
    found: dict[tuple, Layer] = {}
    for band, time in time_bands(ds).items():
        if band not in wanted:
            continue
        g = grid_of(ds, band, name)
        key = (time, g.y, g.x, g.crs.to_wkt(), tuple(g.transform)[:6])
        if key not in found:
            days = ds[time].values.astype("datetime64[D]")
            found[key] = Layer(name, ds, path, [], time, g, days)
        found[key].bands.append(band)
        found[key].attrs[band] = band_attrs(ds[band])
    return list(found.values())


def read_static(path: Path, band: str | None) -> tuple[np.ndarray, float | None, Grid]:
    """A (y, x) variable of a NetCDF file or Zarr store, e.g. a label raster: values [H, W]
    north up, its nodata and its grid. `band` may be left out when the file holds one."""
    ds = open_dataset(path)
    static = [str(v) for v in ds.data_vars if len(ds[v].dims) == 2]
    if band is None:
        if len(static) != 1:
            raise DataError(path, f"holds {len(static)} 2-D variables {static}: name one")
        band = static[0]
    if band not in static:
        raise DataError(path, f"has no 2-D variable {band}; it holds {preview(static, 12)}")
    grid = grid_of(ds, band, str(path))
    values = ds[band].transpose(grid.y, grid.x).values
    return (values[::-1] if grid.flip_y else values), band_attrs(ds[band])["nodata"], grid
