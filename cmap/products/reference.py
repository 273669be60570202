"""Reference labels for assessing a map, and the map read where they lie: points, polygons
or a label raster placed on the map's grid with the readers of `cmap samples`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from cmap.data.labels.sources import read_label_raster, read_points
from cmap.data.labels.vectors import read_vector
from cmap.data.mapping import read_mapping
from cmap.errors import DataError, preview
from cmap.io.maps import NODATA, read_classes
from cmap.products.probabilities import blocks

TABLES = (".csv",)
RASTERS = (".tif", ".tiff", ".nc", ".zarr")


@dataclass
class MapGrid:
    """A map's pixels, as the label readers place labels on them."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    kind: str = "map"

    def windows(self, size: int) -> list[Window]:
        return list(blocks(self.height, self.width, size))


def open_map(path: Path) -> tuple[MapGrid, list[str]]:
    """The grid and class names of a cmap class map, refused in one line when it is not one."""
    try:
        with rasterio.open(path) as src:
            grid = MapGrid(src.crs, src.transform, src.width, src.height)
            single = src.count == 1 and src.dtypes[0] == "uint8"
    except RasterioIOError as err:
        raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err
    classes = read_classes(path)
    if not single or not classes:
        raise DataError(
            path,
            "is not a cmap class map (one uint8 band with CLASS_<id> tags, as `cmap "
            "predict` or `cmap smooth` write)",
        )
    return grid, classes


def is_vector(path: Path) -> bool:
    """A vector file, or a points table (CSV; parquet without a geometry column)."""
    if path.suffix.lower() in (".parquet", ".geoparquet", ".pq"):
        import pyarrow.parquet as pq

        return "geometry" in pq.read_schema(path).names
    return path.suffix.lower() not in TABLES + RASTERS


def reference_labels(
    path: Path,
    grid: MapGrid,
    classes: list[str],
    label_column: str = "label",
    label_band: str | None = None,
    label_mapping: Path | None = None,
    buffer: float = 0.0,
) -> dict[str, np.ndarray]:
    """Reference pixels (row, col) and their class index in `classes` [n]. Codes become
    classes through `label_mapping` (codes it does not list: `other`); labels that are not
    among the map's classes are refused."""
    if not path.exists():
        raise DataError(path, "reference file not found")
    if path.suffix.lower() in RASTERS:
        found = read_label_raster(path, grid, "block", 1, label_band)
        names = read_classes(path) if path.suffix.lower() in (".tif", ".tiff") else []
        if names:  # a cmap class map (e.g. the demo's truth): ids -> class names
            found["label"] = np.array(names + ["?"] * 256)[found["label"].astype(int)]
    elif is_vector(path):
        found = read_vector(path, grid, label_column, None, buffer, 1)
    else:
        found = read_points(path, grid)
    labels = found["label"]
    if label_mapping is not None:
        mapping = read_mapping(label_mapping)
        labels = np.array([mapping.get(code, "other") for code in labels])
    index = {name: k for k, name in enumerate(classes)}
    unknown = sorted(set(np.unique(labels)) - set(index))
    if unknown:
        raise DataError(
            path,
            f"reference labels not among the map's classes: {preview(unknown)} (the map has "
            f"{', '.join(classes)}); give --label_mapping to turn codes into classes",
        )
    return {"row": found["row"], "col": found["col"], "label": np.array([index[v] for v in labels])}


def map_values(path: Path, grid: MapGrid, row: np.ndarray, col: np.ndarray, k: int):
    """The map's class at each reference pixel [n] (NODATA where it has none) and its pixel
    count per class [K], in one pass over the map's blocks."""
    values = np.full(len(row), NODATA, np.int64)
    mapped = np.zeros(k, np.int64)
    with rasterio.open(path) as src:
        for window in blocks(grid.height, grid.width):
            block = src.read(1, window=window)
            mapped += np.bincount(block[block != NODATA], minlength=k)[:k]
            inside = (
                (row >= window.row_off)
                & (row < window.row_off + window.height)
                & (col >= window.col_off)
                & (col < window.col_off + window.width)
            )
            values[inside] = block[row[inside] - window.row_off, col[inside] - window.col_off]
    return values, mapped
