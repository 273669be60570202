"""Reading and writing a map's class probabilities (`<map>_probabilities.tif`, one band per
class named by its description) block by block, for the products made from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from cmap.errors import DataError
from cmap.io.atomic import atomic_path
from cmap.io.maps import NODATA, class_tags, cloud_optimize, colour_table, encode, map_profile

BLOCK = 256  # pixels a side read and written at once


@contextmanager
def open_probabilities(path: Path):
    """The probabilities GeoTIFF opened for reading, refused in one line when it is not one
    (unreadable, a single band, bands without class names)."""
    try:
        src = rasterio.open(path)
    except RasterioIOError as err:
        raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err
    with src:
        if src.count < 2 or not all(src.descriptions):
            raise DataError(
                path,
                f"is not a probabilities file ({src.count} band(s)"
                + ("" if all(src.descriptions) else ", without class names")
                + "): give the `<map>_probabilities.tif` that `cmap predict` writes with "
                "`probabilities: true`",
            )
        yield src


def classes_of(src) -> list[str]:
    return list(src.descriptions)


def blocks(height: int, width: int, size: int = BLOCK) -> Iterator[Window]:
    """Windows of `size` x `size` pixels covering the raster, row by row."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def with_halo(window: Window, halo: int, height: int, width: int) -> Window:
    """`window` grown by `halo` pixels on each side, cut at the raster's edges."""
    row0, col0 = max(0, window.row_off - halo), max(0, window.col_off - halo)
    row1 = min(height, window.row_off + window.height + halo)
    col1 = min(width, window.col_off + window.width + halo)
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_block(src, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [K, h, w] (float64, summing to 1; uint8 rounding undone by
    renormalising) and missing [h, w] (True: the map has no value there)."""
    scale = 255.0 if src.dtypes[0] == "uint8" else 1.0
    p = src.read(window=window).astype(np.float64) / scale
    missing = (src.read_masks(1, window=window) == 0) | np.isnan(p).any(axis=0)
    p = np.where(missing, 1.0 / src.count, p)
    total = p.sum(axis=0)
    return p / np.where(total > 0, total, 1.0), missing


@contextmanager
def map_output(src, output: Path, probabilities: Path | None, tags: dict[str, str]):
    """Create a class map (uint8, colour table, class tags) and, optionally, probabilities in
    the layout of `cmap predict` on the grid of the probabilities file `src`; yields
    `write(p [K, h, w], missing [h, w], window)`. The files appear when the block ends well,
    as Cloud Optimized GeoTIFFs."""
    classes, dtype = classes_of(src), src.dtypes[0]
    tags = src.tags() | class_tags(classes) | tags
    grid = {"width": src.width, "height": src.height, "crs": src.crs, "transform": src.transform}
    with ExitStack() as stack:
        partials = [stack.enter_context(atomic_path(Path(output)))]
        classes_file = stack.enter_context(
            rasterio.open(partials[0], "w", **map_profile(grid, 1, "uint8", NODATA))
        )
        classes_file.write_colormap(1, colour_table(classes))
        classes_file.update_tags(**tags)
        classes_file.set_band_description(1, "class")
        probabilities_file = None
        if probabilities is not None:
            partials.append(stack.enter_context(atomic_path(Path(probabilities))))
            nodata = None if dtype == "uint8" else float("nan")
            spec = map_profile(grid, len(classes), dtype, nodata)
            probabilities_file = stack.enter_context(rasterio.open(partials[1], "w", **spec))
            probabilities_file.update_tags(**tags)
            probabilities_file.descriptions = tuple(classes)

        def write(p: np.ndarray, missing: np.ndarray, window: Window) -> None:
            labels = np.where(missing, NODATA, p.argmax(axis=0)).astype(np.uint8)
            classes_file.write(labels, 1, window=window)
            if probabilities_file is not None:
                probabilities_file.write(encode(p, missing, dtype), window=window)
                if dtype == "uint8":  # no value is free for nodata: a mask
                    mask = np.where(missing, 0, 255).astype(np.uint8)
                    probabilities_file.write_mask(mask, window=window)

        yield write
        for file, partial, resampling in zip(
            (classes_file, probabilities_file), partials, ("mode", "average")
        ):
            file.close()  # whole, then rewritten with overviews before it takes its name
            cloud_optimize(partial, resampling)
