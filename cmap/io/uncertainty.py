"""Per-pixel uncertainty of a crop map, from its class probabilities (the `_probabilities.tif`
the map writer leaves): normalised entropy, margin between the two likeliest classes, and
least confidence, as one float32 GeoTIFF aligned with the map, written block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from cmap.errors import DataError
from cmap.io.atomic import atomic_path
from cmap.io.outputs import refuse_existing

MEASURES = ("entropy", "margin", "least_confidence")
ROWS = 256  # rows read and written at once


def measures(p: np.ndarray) -> np.ndarray:
    """Probabilities [K, ...] (summing to 1 over K) -> [3, ...] float32: entropy / log K (0:
    certain, 1: uniform), margin p(1st) - p(2nd) (low: unsure), least confidence 1 - p(1st)."""
    k = p.shape[0]
    p = p.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0) / np.log(k)
    top = np.sort(p, axis=0)
    return np.stack([entropy, top[-1] - top[-2], 1.0 - top[-1]]).astype(np.float32)


def default_output(probabilities: Path) -> Path:
    stem = probabilities.stem.removesuffix("_probabilities")
    return probabilities.with_name(f"{stem}_uncertainty.tif")


def write_uncertainty(probabilities: Path, output: Path | None, overwrite: bool) -> Path:
    """Write the uncertainty GeoTIFF of a probabilities file; returns its path. Pixels
    without probabilities (the file's mask, or NaN) are NaN."""
    output = Path(output) if output else default_output(probabilities)
    refuse_existing(output, overwrite=overwrite)
    try:
        src = rasterio.open(probabilities)
    except RasterioIOError as err:
        raise DataError(probabilities, f"cannot be read as a GeoTIFF ({err})") from err
    with src:
        if src.count < 2:
            raise DataError(
                probabilities, f"has {src.count} band; uncertainty needs one band per class"
            )
        scale = 255.0 if src.dtypes[0] == "uint8" else 1.0
        profile = src.profile | {
            "count": 3, "dtype": "float32", "nodata": float("nan"), "tiled": True,
            "blockxsize": 256, "blockysize": 256, "compress": "deflate",
        }  # fmt: skip
        tags = src.tags() | {
            "UNCERTAINTY": ", ".join(MEASURES),
            "PROBABILITIES": str(probabilities),
        }
        with atomic_path(output) as partial, rasterio.open(partial, "w", **profile) as dst:
            dst.descriptions = MEASURES
            dst.update_tags(**tags)
            for row in range(0, src.height, ROWS):
                window = Window(0, row, src.width, min(ROWS, src.height - row))
                p = src.read(window=window).astype(np.float64) / scale  # [K, h, w]
                missing = (src.read_masks(1, window=window) == 0) | np.isnan(p).any(axis=0)
                p = np.where(missing, 1.0 / src.count, p)
                total = p.sum(axis=0)
                out = measures(p / np.where(total > 0, total, 1.0))  # uint8 rounding renormalised
                out[:, missing] = np.nan
                dst.write(out, window=window)
    return output
