"""Crop maps as GeoTIFF (docs/data_formats.md): layout, colours, class tags, reading back."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from cmap.errors import DataError

NODATA = 255
CLASS_TAG = "CLASS_{}"


def colour_table(classes: list[str]) -> dict[int, tuple[int, int, int, int]]:
    """One distinct colour per class id (matplotlib's tab20), NODATA transparent."""
    palette = matplotlib.colormaps["tab20"]
    table = {
        k: tuple(int(round(255 * v)) for v in palette(k % 20)[:3]) + (255,)
        for k in range(len(classes))
    }
    return table | {NODATA: (0, 0, 0, 0)}


def map_profile(grid_profile: dict, count: int, dtype: str, nodata) -> dict:
    """A cube's georeferencing with cmap's map layout: tiled 256 x 256, deflate."""
    return {
        "driver": "GTiff",
        "width": grid_profile["width"],
        "height": grid_profile["height"],
        "crs": grid_profile["crs"],
        "transform": grid_profile["transform"],
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }


def class_tags(classes: list[str]) -> dict[str, str]:
    """The tags naming a map's classes: `CLASS_NAMES` and one `CLASS_<id>` per class."""
    return {"CLASS_NAMES": ",".join(classes)} | {
        CLASS_TAG.format(k): name for k, name in enumerate(classes)
    }


def read_classes(path: Path) -> list[str]:
    """Class names stored in a cmap map's tags."""
    with rasterio.open(path) as src:
        tags = src.tags()
    names, k = [], 0
    while CLASS_TAG.format(k) in tags:
        names.append(tags[CLASS_TAG.format(k)])
        k += 1
    return names


def read_probability_overview(path: Path, max_side: int) -> tuple[np.ndarray, list[str]] | None:
    """The highest class probability [H, W] (NaN where masked) of a cmap probabilities file,
    decimated to at most `max_side` pixels a side, and its class names; None when `path` is
    not a readable probabilities file (one band per class, named by band descriptions)."""
    try:
        with rasterio.open(path) as src:
            if src.count < 2 or not all(src.descriptions):
                return None
            step = max(1, int(np.ceil(max(src.width, src.height) / max_side)))
            shape = (int(np.ceil(src.height / step)), int(np.ceil(src.width / step)))
            values = src.read(out_shape=(src.count, *shape), masked=True).astype(np.float32)
            names = list(src.descriptions)
            scale = 255.0 if src.dtypes[0] == "uint8" else 1.0
    except RasterioIOError:
        return None  # `read_overview` says why
    highest = (values.max(axis=0) / scale).filled(np.nan)
    return highest, names


def read_overview(path: Path, max_side: int) -> tuple[np.ndarray, dict[int, tuple], list[str]]:
    """A class map decimated to at most `max_side` pixels a side: class ids [H, W], its
    colour table and its class names."""
    try:
        with rasterio.open(path) as src:
            step = max(1, int(np.ceil(max(src.width, src.height) / max_side)))
            classes = src.read(
                1, out_shape=(int(np.ceil(src.height / step)), int(np.ceil(src.width / step)))
            )
            colours = src.colormap(1)
    except (RasterioIOError, ValueError) as err:
        raise DataError(path, f"cannot be read as a cmap class map ({err})") from err
    return classes, colours, read_classes(path)
