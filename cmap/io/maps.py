"""Crop maps as GeoTIFF (docs/reference/data_formats.md): layout, colours, class tags, probability
values, Cloud Optimized GeoTIFF, reading back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.shutil import copy

from cmap.errors import DataError
from cmap.io.atomic import atomic_path
from cmap.io.palette import class_colours

NODATA = 255
CLASS_TAG = "CLASS_{}"


def colour_table(
    classes: list[str], overrides: dict[str, tuple[int, int, int]] | None = None
) -> dict[int, tuple[int, int, int, int]]:
    """One colour per class id (`palette.class_colours`), NODATA transparent."""
    table = {k: (*colour, 255) for k, colour in enumerate(class_colours(classes, overrides))}
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


def encode(p: np.ndarray, missing: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities [K, h, w] -> the file's values: uint8 x 255, else floats with NaN."""
    if dtype == "uint8":  # the mask band marks missing pixels: their values do not matter
        return np.round(np.where(missing, 0.0, p) * 255).astype(np.uint8)
    out = p.astype(dtype)
    out[:, missing] = np.nan
    return out


def cloud_optimize(path: Path, resampling: str) -> None:
    """Rewrite the finished GeoTIFF `path` in place as a Cloud Optimized GeoTIFF: 256 x 256
    deflate tiles and overviews (`resampling`: "mode" for classes, "average" for
    probabilities), so that a GIS or a web map shows a whole country at once. Tags, colour
    table, band names and masks are kept; the file is replaced only once the copy is whole."""
    with atomic_path(path) as partial:
        copy(
            path,
            partial,
            driver="COG",
            compress="DEFLATE",
            blocksize=256,
            overview_resampling=resampling.upper(),
            num_threads="ALL_CPUS",
        )


def class_tags(classes: list[str]) -> dict[str, str]:
    """The tags naming a map's classes: `CLASS_NAMES` and one `CLASS_<id>` per class."""
    return {"CLASS_NAMES": ",".join(classes)} | {
        CLASS_TAG.format(k): name for k, name in enumerate(classes)
    }


PRIOR_TAG = "OUTPUT_PRIOR"  # the model's output prior, in class order (`cmap priors`)


def prior_tags(prior) -> dict[str, str]:
    """The tag recording a model's output prior [K] (its mean predicted probabilities on
    validation data); none for a model never validated (all zero) or without one."""
    values = [] if prior is None else [float(v) for v in prior]
    if not any(values):
        return {}
    return {PRIOR_TAG: ",".join(f"{v:.6g}" for v in values)}


def prior_values(text: str | None) -> list[float] | None:
    """The output prior a `prior_tags` text holds; None for no text."""
    return [float(v) for v in text.split(",")] if text else None


def read_classes(path: Path) -> list[str]:
    """Class names stored in a cmap map's tags."""
    with rasterio.open(path) as src:
        tags = src.tags()
    names, k = [], 0
    while CLASS_TAG.format(k) in tags:
        names.append(tags[CLASS_TAG.format(k)])
        k += 1
    return names


@dataclass
class Overview:
    """A map decimated for display: values [H, W] (class ids; or, NaN where masked, the
    highest class probability or the normalised entropy), class names (or the uncertainty
    measures), colour table (class maps), where it lies (bounds left, bottom, right, top;
    CRS), its tags (season, model, source) and its kind: classes, probabilities or
    uncertainty."""

    values: np.ndarray
    names: list[str]
    colours: dict[int, tuple] | None
    bounds: tuple[float, float, float, float]
    crs: CRS | None
    tags: dict[str, str]
    kind: str = "classes"


def read_overview(path: Path, max_side: int) -> Overview:
    """A cmap class map or probabilities file decimated to at most `max_side` pixels a side
    (a probabilities file: one band per class named by band descriptions)."""
    try:
        with rasterio.open(path) as src:
            step = max(1, int(np.ceil(max(src.width, src.height) / max_side)))
            shape = (int(np.ceil(src.height / step)), int(np.ceil(src.width / step)))
            where = (tuple(src.bounds), src.crs, src.tags())
            if "UNCERTAINTY" in where[2]:  # cmap uncertainty's file: its entropy band
                entropy = src.read(1, out_shape=shape, masked=True).astype(np.float32)
                names = list(src.descriptions)
                return Overview(entropy.filled(np.nan), names, None, *where, "uncertainty")
            if src.count >= 2 and all(src.descriptions):
                values = src.read(out_shape=(src.count, *shape), masked=True).astype(np.float32)
                scale = 255.0 if src.dtypes[0] == "uint8" else 1.0
                highest = (values.max(axis=0) / scale).filled(np.nan)
                return Overview(highest, list(src.descriptions), None, *where, "probabilities")
            classes = src.read(1, out_shape=shape)
            colours = src.colormap(1)
    except (RasterioIOError, ValueError) as err:
        raise DataError(path, f"cannot be read as a cmap class map ({err})") from err
    return Overview(classes, read_classes(path), colours, *where)
