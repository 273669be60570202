"""How a raster is cut into windows, the unit cmap reads, predicts and writes at once."""

from __future__ import annotations

from rasterio.windows import Window


def square_windows(width: int, height: int, size: int, offset: int = 0) -> list[Window]:
    """Row-major windows of `size` x `size` pixels, smaller at the edges: the grid starts
    `offset` pixels in (a narrower first row and column of windows)."""
    rows, cols = (sorted({0, n, *range(offset % size, n, size)}) for n in (height, width))
    return [
        Window(c0, r0, c1 - c0, r1 - r0)
        for r0, r1 in zip(rows, rows[1:])
        for c0, c1 in zip(cols, cols[1:])
    ]
