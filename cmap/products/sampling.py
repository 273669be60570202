"""A stratified random reference sample drawn from a class map (the design Olofsson et al.
2014 recommend; `cmap assess` estimates from it): each map class a stratum, a number of
pixels per class (equal, or proportional to the class's area with a floor for rare classes),
drawn without replacement, seeded; written as points for a vector file or a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import rasterio
from rasterio.transform import xy
from rasterio.warp import transform as reproject_points

from cmap.errors import ConfigError, DataError
from cmap.io.atomic import atomic_path
from cmap.io.maps import NODATA
from cmap.io.outputs import refuse_existing
from cmap.products.probabilities import blocks
from cmap.products.reference import map_values, open_map
from cmap.products.vectors import check_vector_output, geopandas_module, write_frame


def allocate(
    mapped: np.ndarray, per_class: int | None, total: int | None, floor: int
) -> np.ndarray:
    """Sample size per class [K]: `per_class` each, or `total` shared in proportion to the
    mapped pixels [K] with at least `floor` each; never more than a class's pixels."""
    if (per_class is None) == (total is None):
        raise ConfigError("give exactly one of --per_class and --total")
    if per_class is not None:
        wanted = np.where(mapped > 0, per_class, 0)
    else:
        share = mapped / max(mapped.sum(), 1)
        wanted = np.where(mapped > 0, np.maximum(np.round(total * share), floor), 0)
    return np.minimum(wanted, mapped).astype(np.int64)


def draw_pixels(path: Path, sizes: np.ndarray, mapped: np.ndarray, seed: int):
    """Rows, cols and classes of `sizes[k]` distinct random pixels of each class k: random
    ranks among the class's pixels (in block order), found in a second pass over the map."""
    rng = np.random.default_rng(seed)
    ranks = [np.sort(rng.choice(int(m), int(n), replace=False)) for m, n in zip(mapped, sizes)]
    seen = np.zeros(len(mapped), np.int64)
    rows, cols, classes = [], [], []
    with rasterio.open(path) as src:
        for window in blocks(src.height, src.width):
            block = src.read(1, window=window)
            for k in np.unique(block[block != NODATA]):
                where = np.flatnonzero(block == k)  # row-major within the block
                pick = ranks[k][(ranks[k] >= seen[k]) & (ranks[k] < seen[k] + len(where))]
                r, c = np.divmod(where[pick - seen[k]], int(window.width))
                rows.append(r + window.row_off)
                cols.append(c + window.col_off)
                classes.append(np.full(len(pick), k))
                seen[k] += len(where)
    return tuple(np.concatenate(v) if v else np.zeros(0, np.int64) for v in (rows, cols, classes))


def reference_sample(
    map_path: Path,
    output: Path,
    per_class: int | None = None,
    total: int | None = None,
    min_per_class: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, int]:
    """Draw the sample and write it (`poi_id`, `map_class`, an empty `label` to fill in, the
    pixel centre as x, y in the map's CRS and lon, lat); returns the size per class."""
    check_vector_output(output, table=True)
    refuse_existing(output, overwrite=overwrite)
    grid, classes = open_map(map_path)
    none = np.zeros(0, np.int64)
    mapped = map_values(map_path, grid, none, none, len(classes))[1]  # pixels per class
    sizes = allocate(mapped, per_class, total, min_per_class)
    if not sizes.sum():
        raise DataError(map_path, "has no mapped pixel to draw a sample from")
    rows, cols, drawn = draw_pixels(map_path, sizes, mapped, seed)
    order = np.lexsort((cols, rows, drawn))  # by class, then place
    rows, cols, drawn = rows[order], cols[order], drawn[order]
    x, y = (np.asarray(v) for v in xy(grid.transform, rows, cols))
    lon, lat = (np.asarray(v) for v in reproject_points(grid.crs, "EPSG:4326", x, y))
    columns = {
        "poi_id": [f"s{i:05d}" for i in range(len(rows))],
        "map_class": [classes[k] for k in drawn],
        "label": [""] * len(rows),
        "x": x,
        "y": y,
        "lon": lon,
        "lat": lat,
    }
    write_points(columns, output, grid.crs)
    return {name: int(n) for name, n in zip(classes, sizes) if mapped[classes.index(name)]}


def write_points(columns: dict, output: Path, crs) -> None:
    """A CSV table, or a vector file of points (format by suffix; needs the geo extra)."""
    if output.suffix.lower() == ".csv":
        with atomic_path(output) as partial:
            pv.write_csv(pa.table(columns), partial)
        return
    geopandas = geopandas_module()
    frame = geopandas.GeoDataFrame(
        {k: v for k, v in columns.items() if k not in ("x", "y")},
        geometry=geopandas.points_from_xy(columns["x"], columns["y"]),
        crs=crs,
    )
    write_frame(frame, output)
