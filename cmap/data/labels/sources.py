"""Where the labelled pixels of `cmap samples` come from: a points table, a label raster
(GeoTIFF, or a 2-D variable of a NetCDF file / Zarr store) aligned with the cube, or random
pixels; `LabelSource` is the one the user chose. Each source gives row, col, label, poi_id
and group (the unit kept whole by the splits: a field, a parcel of the label raster, or a
block of pixels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize, shapes
from rasterio.warp import transform as reproject_points

from cmap.data.labels.vectors import read_vector
from cmap.data.layers import NETCDF, ZARR, read_static
from cmap.data.parquet import read_parquet
from cmap.errors import ConfigError, DataError, preview


def _points_table(path: Path) -> pa.Table:
    if not path.exists():
        raise DataError(path, "points file not found")
    try:
        return pv.read_csv(path) if path.suffix.lower() == ".csv" else read_parquet(path)
    except pa.ArrowInvalid as err:
        raise DataError(path, f"cannot be read as a points table ({err})") from err


def count_points(path: Path) -> int:
    """The rows of a points table."""
    return _points_table(path).num_rows


def read_points(path: Path, cube, clip: bool = False) -> dict[str, np.ndarray]:
    """Points table -> row, col (pixel of the cube), label, poi_id, group; a point outside
    the cube is refused, or with `clip` (a table over many cubes) left out."""
    table = _points_table(path)
    names = set(table.column_names)
    pair = (
        ("x", "y") if {"x", "y"} <= names else ("lon", "lat") if {"lon", "lat"} <= names else None
    )
    if pair is None:
        raise DataError(path, "needs columns x, y (cube CRS) or lon, lat (WGS 84)")
    for c in pair:
        kind = table[c].type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)) or table[c].null_count:
            raise DataError(path, f"column '{c}' must hold a number on every row, found {kind}")
    first, second = (table[c].to_numpy().astype(np.float64) for c in pair)
    if pair == ("x", "y"):
        x, y = first, second
    elif (np.abs(first) > 180).any() or (np.abs(second) > 90).any():
        raise DataError(path, "lon must lie in [-180, 180] and lat in [-90, 90] (WGS 84 degrees)")
    else:
        x, y = (np.asarray(v) for v in reproject_points("EPSG:4326", cube.crs, first, second))
    if "label" not in names:
        raise DataError(path, "needs a 'label' column")
    rows, cols = rasterio.transform.rowcol(cube.transform, x, y)
    rows, cols = np.asarray(rows), np.asarray(cols)
    n = len(table)
    ids = (
        np.asarray(table["poi_id"].to_pylist(), dtype=object).astype(str)
        if "poi_id" in names
        else np.array([f"p{i:06d}" for i in range(n)])
    )
    outside = (rows < 0) | (rows >= cube.height) | (cols < 0) | (cols >= cube.width)
    if outside.any() and not clip:
        where = getattr(cube, "kind", "cube")  # a map's grid says "map"
        raise DataError(
            path, f"{int(outside.sum())} point(s) outside the {where}, e.g. {preview(ids[outside])}"
        )
    groups = (
        np.asarray(table["field_id"].to_pylist(), dtype=object).astype(str)
        if "field_id" in names
        else ids
    )
    raw = table["label"].to_pylist()
    blank = [i for i, v in enumerate(raw) if v is None or not str(v).strip()]
    if blank:
        raise DataError(path, f"{len(blank)} point(s) without a label, e.g. row(s) {blank[:5]}")
    if "poi_id" in names and table["poi_id"].null_count:
        raise DataError(path, f"{table['poi_id'].null_count} point(s) without a poi_id")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(
            path,
            f"{int((counts > 1).sum())} poi_id(s) given to several points, e.g. "
            f"{preview(unique[counts > 1])}; each point needs its own",
        )
    labels = np.asarray([str(v).strip() for v in raw], dtype=object).astype(str)
    inside = ~outside
    return {
        "row": rows[inside],
        "col": cols[inside],
        "label": labels[inside],
        "poi_id": ids[inside],
        "group": groups[inside],
    }


def _raster(path: Path, band: str | None) -> tuple[np.ndarray, float | None, tuple]:
    """Values [H, W], nodata and (crs, transform, width, height) of a label raster."""
    if path.suffix.lower() in NETCDF + ZARR:
        labels, nodata, grid = read_static(path, band)
        return labels, nodata, (grid.crs, grid.transform, grid.width, grid.height)
    if band is not None:
        raise DataError(path, f"label_band {band} names a variable of a NetCDF / Zarr file")
    try:
        with rasterio.open(path) as src:
            return src.read(1), src.nodata, (src.crs, src.transform, src.width, src.height)
    except RasterioIOError as err:
        raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err


def parcel_ids(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Parcels of a label raster: each 4-connected patch of one label gets its own number
    [H, W] (0 outside `keep`); touching fields of one crop make one parcel."""
    values = np.unique(labels[keep], return_inverse=True)[1]
    codes = np.zeros(labels.shape, np.int32)
    codes[keep] = values.ravel() + 1
    patches = (geom for geom, _ in shapes(codes, mask=keep, connectivity=4))
    return rasterize(
        ((geom, k + 1) for k, geom in enumerate(patches)), out_shape=labels.shape, dtype="int32"
    )


def read_label_raster(
    path: Path, cube, group: str = "parcel", block: int = 16, band: str | None = None
) -> dict[str, np.ndarray]:
    """Every labelled pixel of a raster aligned with the cube, grouped by parcel (a patch of
    one label) or by `block` x `block` pixel blocks."""
    labels, nodata, (crs, transform, width, height) = _raster(path, band)
    if (crs, width, height) != (cube.crs, cube.width, cube.height) or not transform.almost_equals(
        cube.transform
    ):
        raise DataError(
            path,
            f"is not aligned with the cube: {width} x {height} pixels at {tuple(transform)[:6]} "
            f"({crs}), the cube {cube.width} x {cube.height} at {tuple(cube.transform)[:6]} "
            f"({cube.crs})",
        )
    keep = np.ones(labels.shape, bool) if nodata is None else labels != nodata
    rows, cols = np.nonzero(keep)
    if group == "parcel":
        groups = parcel_ids(labels, keep)[keep].astype(str)
    else:
        groups = np.char.add(
            (rows // block).astype(str), np.char.add("_", (cols // block).astype(str))
        )
    text = labels[keep]
    if text.dtype.kind == "f" and np.all(text == np.round(text)):
        text = text.astype(np.int64)
    return {
        "row": rows,
        "col": cols,
        "label": text.astype(str),
        "poi_id": np.char.add(
            np.char.add("r", rows.astype(str)), np.char.add("_c", cols.astype(str))
        ),
        "group": groups,
    }


def random_pixels(cube, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` distinct random pixels, no labels (each its own group)."""
    total = cube.width * cube.height
    pick = np.random.default_rng(seed).choice(total, size=min(count, total), replace=False)
    rows, cols = np.divmod(np.sort(pick), cube.width)
    ids = np.char.add(np.char.add("r", rows.astype(str)), np.char.add("_c", cols.astype(str)))
    return {"row": rows, "col": cols, "label": None, "poi_id": ids, "group": ids}


@dataclass(frozen=True)
class LabelSource:
    """Where `cmap samples` takes its pixels: exactly one of a points table, a label raster,
    a vector file and `unlabelled` random pixels (see `cmap samples --help`)."""

    points: Path | None = None
    label_raster: Path | None = None
    label_band: str | None = None
    vector: Path | None = None
    label_column: str = "label"
    id_column: str | None = None
    buffer: float = 0.0
    min_pixels: int = 1
    unlabelled: int | None = None
    group: str = "parcel"
    block: int = 16
    clip: bool = False  # points and parcels span many cubes: those off this one are left out

    def __post_init__(self) -> None:
        given = (self.points, self.label_raster, self.vector, self.unlabelled)
        if sum(s is not None for s in given) != 1:
            raise ConfigError(
                "give exactly one of --points, --label_raster, --vector and --unlabelled"
            )
        if self.unlabelled is not None and self.unlabelled < 1:
            raise ConfigError(f"unlabelled must be at least 1 pixel, got {self.unlabelled}")

    @property
    def files(self) -> list[Path]:
        return [Path(p) for p in (self.points, self.label_raster, self.vector) if p is not None]

    @property
    def local_ids(self) -> bool:
        """Whether poi_id and group name pixels of one cube (a label raster's, random ones)
        rather than points or parcels of a file that several cubes share."""
        return self.points is None and self.vector is None

    def pick(self, grid, seed: int) -> dict[str, np.ndarray]:
        """row, col, label (None for random pixels), poi_id and group [P] on `grid`."""
        if self.points is not None:
            return read_points(Path(self.points), grid, self.clip)
        if self.label_raster is not None:
            raster = Path(self.label_raster)
            return read_label_raster(raster, grid, self.group, self.block, self.label_band)
        if self.vector is not None:
            return read_vector(
                Path(self.vector),
                grid,
                self.label_column,
                self.id_column,
                self.buffer,
                self.min_pixels,
                self.clip,
            )
        return random_pixels(grid, self.unlabelled, seed)
