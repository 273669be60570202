"""A samples folder (docs/data_formats.md §1) cut out of a raster cube (`cmap samples`).

Labelled pixels come from a points table (`x`, `y` in the cube's CRS, or `lon`, `lat` in
WGS 84; `label`; optional `poi_id` and `field_id`) or from a label raster aligned with the
cube; `--unlabelled N` draws N random pixels instead, for pretraining. Samples are split into
train/val/test by a seed, whole groups at a time: a field (`field_id`) or, for a label raster,
a block of pixels, so neighbouring pixels of one field never fall in two splits. The cube is
read window by window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import rasterio
import yaml
from rasterio.errors import RasterioIOError
from rasterio.warp import transform as reproject_points

from cmap.data.formats.cube import Cube
from cmap.data.formats.parquet import read_parquet
from cmap.data.season import Season
from cmap.errors import DataError, preview
from cmap.io.atomic import atomic_path
from cmap.io.outputs import MARKER

SPLITS = ("train", "val", "test")


def read_points(path: Path, cube) -> dict[str, np.ndarray]:
    """Points table -> row, col (pixel of the cube), label, poi_id, group."""
    if not path.exists():
        raise DataError(path, "points file not found")
    try:
        table = pv.read_csv(path) if path.suffix.lower() == ".csv" else read_parquet(path)
    except pa.ArrowInvalid as err:
        raise DataError(path, f"cannot be read as a points table ({err})") from err
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
    if outside.any():
        raise DataError(
            path, f"{int(outside.sum())} point(s) outside the cube, e.g. {preview(ids[outside])}"
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
    return {"row": rows, "col": cols, "label": labels, "poi_id": ids, "group": groups}


def read_label_raster(path: Path, cube, block: int) -> dict[str, np.ndarray]:
    """Every labelled pixel of a raster aligned with the cube; groups are pixel blocks."""
    try:
        with rasterio.open(path) as src:
            if (src.crs, src.transform, src.width, src.height) != (
                cube.crs,
                cube.transform,
                cube.width,
                cube.height,
            ):
                raise DataError(path, "is not aligned with the cube (CRS, transform or size)")
            labels, nodata = src.read(1), src.nodata
    except RasterioIOError as err:
        raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err
    keep = np.ones(labels.shape, bool) if nodata is None else labels != nodata
    rows, cols = np.nonzero(keep)
    return {
        "row": rows,
        "col": cols,
        "label": labels[keep].astype(str),
        "poi_id": np.char.add(
            np.char.add("r", rows.astype(str)), np.char.add("_c", cols.astype(str))
        ),
        "group": np.char.add(
            (rows // block).astype(str), np.char.add("_", (cols // block).astype(str))
        ),
    }


def random_pixels(cube, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` distinct random pixels, no labels (each its own group)."""
    total = cube.width * cube.height
    pick = np.random.default_rng(seed).choice(total, size=min(count, total), replace=False)
    rows, cols = np.divmod(np.sort(pick), cube.width)
    ids = np.char.add(np.char.add("r", rows.astype(str)), np.char.add("_c", cols.astype(str)))
    return {"row": rows, "col": cols, "label": None, "poi_id": ids, "group": ids}


def assign_splits(groups: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Split index per sample, whole groups at a time, in seeded random order."""
    unique, inverse = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(fractions) / sum(fractions) * len(unique)).astype(int)
    split_of_rank = np.searchsorted(bounds, np.arange(len(unique)), side="right")
    split_of_group = np.empty(len(unique), np.int64)
    split_of_group[order] = split_of_rank
    return split_of_group[inverse]


def pixel_rows(cube, samples: dict, window_size: int = 256) -> dict[str, np.ndarray]:
    """The samples' valid dates, window by window: sample [R] (index into `samples`),
    date [R] and values [R, C] (scaled)."""
    sample, date, values = [], [], []
    tile_row, tile_col = samples["row"] // window_size, samples["col"] // window_size
    for window in cube.windows(window_size):
        inside = np.flatnonzero(
            (tile_row == window.row_off // window_size)
            & (tile_col == window.col_off // window_size)
        )
        if not len(inside):
            continue
        data, valid = cube.read(window)  # [T, C, h, w], [T, h, w]
        r = samples["row"][inside] - window.row_off
        c = samples["col"][inside] - window.col_off
        dates, points = np.nonzero(valid[:, r, c])  # [T, P] -> valid (date, point) pairs
        sample.append(inside[points])
        date.append(cube.dates[dates])
        values.append(data[dates, :, r[points], c[points]])  # [R, C]
    return {
        "sample": np.concatenate(sample) if sample else np.zeros(0, np.int64),
        "date": np.concatenate(date) if date else np.zeros(0, "datetime64[D]"),
        "values": np.concatenate(values) if values else np.zeros((0, len(cube.bands)), np.float32),
    }


def write_samples(
    cube: Cube,
    year: int,
    season: Season,
    samples: dict,
    fractions: list[float],
    seed: int,
    out: Path,
) -> dict[str, int]:
    """Write the samples folder `out` (built aside, then moved into place); returns the
    number of samples per split."""
    split = assign_splits(samples["group"], fractions, seed)
    rows = pixel_rows(cube, samples)
    row_split = split[rows["sample"]]
    counts = {}
    with atomic_path(out) as partial:
        partial.mkdir(parents=True)
        (partial / MARKER).write_text("a samples folder written by cmap samples\n")
        for k, name in enumerate(SPLITS):
            folder = partial / name
            folder.mkdir(parents=True)
            keep = row_split == k
            features = {
                "poi_id": pa.array(samples["poi_id"][rows["sample"][keep]]),
                "date": pa.array(rows["date"][keep]),
            }
            for j, band in enumerate(cube.bands):
                features[band] = pa.array(rows["values"][keep, j].astype(np.float32))
            pq.write_table(pa.table(features), folder / "features.pq")
            members = split == k
            counts[name] = int(members.sum())
            if samples["label"] is not None:
                labels = {
                    "poi_id": pa.array(samples["poi_id"][members]),
                    "season": pa.array(np.full(members.sum(), year, np.int32)),
                    "label": pa.array(samples["label"][members]),
                }
                pq.write_table(pa.table(labels), folder / "labels.pq")
        meta = {
            "bands": cube.bands,
            "scale": 1.0,  # values written already scaled
            "nodata": None,
            "season_start": season.start,
            "source_cube": str(cube.folder),
            "samples_per_split": counts,
            "split_seed": seed,
        }
        (partial / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return counts
