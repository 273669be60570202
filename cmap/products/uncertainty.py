"""Per-pixel uncertainty of a crop map, from its class probabilities (the `_probabilities.tif`
the map writer leaves): normalised entropy, margin between the two likeliest classes, and
least confidence, as one float32 GeoTIFF aligned with the map, written block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from cmap.io.atomic import atomic_path
from cmap.io.maps import cloud_optimize
from cmap.io.outputs import derived, refuse_existing
from cmap.products.probabilities import blocks, open_probabilities, read_block

MEASURES = ("entropy", "margin", "least_confidence")


def measures(p: np.ndarray) -> np.ndarray:
    """Probabilities [K, ...] (summing to 1 over K) -> [3, ...] float32: entropy / log K (0:
    certain, 1: uniform), margin p(1st) - p(2nd) (low: unsure), least confidence 1 - p(1st)."""
    k = p.shape[0]
    p = p.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0) / np.log(k)
    top = np.sort(p, axis=0)
    return np.stack([entropy, top[-1] - top[-2], 1.0 - top[-1]]).astype(np.float32)


def write_uncertainty(probabilities: Path, output: Path | None, overwrite: bool) -> Path:
    """Write the uncertainty GeoTIFF of a probabilities file; returns its path. Pixels
    without probabilities (the file's mask, or NaN) are NaN."""
    output = Path(output) if output else derived(probabilities, "uncertainty")
    refuse_existing(output, overwrite=overwrite)
    with open_probabilities(probabilities) as src:
        profile = src.profile | {
            "count": 3,
            "dtype": "float32",
            "nodata": float("nan"),
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
        }
        tags = src.tags() | {
            "UNCERTAINTY": ", ".join(MEASURES),
            "PROBABILITIES": str(probabilities),
        }
        with atomic_path(output) as partial:
            with rasterio.open(partial, "w", **profile) as dst:
                dst.descriptions = MEASURES
                dst.update_tags(**tags)
                for window in blocks(src.height, src.width):
                    p, missing = read_block(src, window)
                    out = measures(p)
                    out[:, missing] = np.nan
                    dst.write(out, window=window)
            cloud_optimize(partial, "average")
    return output
