"""A mosaic of tiles cut from one cube, to try and test `cmap predict --tiles` (a country's
worth of tiles is a grid of such cubes, each in its own folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from cmap.errors import DataError


def write_tiles(cube: str | Path, out: str | Path, grid: int = 2, size: int | None = None):
    """`out/T<row><col>/` for a `grid` x `grid` mosaic of tiles of `size` pixels (default the
    cube's side), side by side on the cube's pixel grid. Each tile is the cube's dates and
    bands, its pixels turned a quarter per tile (so tiles differ) and repeated to `size`;
    the cube's `meta.yaml` goes with each. Returns the tile folders."""
    cube, out = Path(cube), Path(out)
    dates = sorted(cube.glob("*.tif"))
    if not dates:
        raise DataError(cube, "holds no GeoTIFF dates to cut tiles from")
    meta = cube / "meta.yaml" if (cube / "meta.yaml").exists() else cube.parent / "meta.yaml"
    folders = []
    for row in range(grid):
        for col in range(grid):
            folder = out / f"T{row}{col}"
            if folder.exists():
                raise DataError(folder, "already exists; choose another folder")
            folder.mkdir(parents=True)
            for path in dates:
                with rasterio.open(path) as src:
                    data, profile, names = src.read(), src.profile, src.descriptions
                side = size or data.shape[1]
                turned = np.rot90(data, k=row * grid + col, axes=(1, 2))
                reps = -(-side // turned.shape[1])
                tile = np.tile(turned, (1, reps, reps))[:, :side, :side]
                t = profile["transform"]
                shifted = t * Affine.translation(col * side, row * side)
                profile |= {"width": side, "height": side, "transform": shifted}
                with rasterio.open(folder / path.name, "w", **profile) as dst:
                    dst.write(tile)
                    dst.descriptions = names
            if meta.exists():
                shutil.copy(meta, folder / "meta.yaml")
            folders.append(folder)
    return folders
