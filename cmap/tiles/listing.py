"""The tiles a run maps: glob patterns, paths, or `@FILE` (one tile per line), each a cube
that `cmap predict` opens (a GeoTIFF folder, a NetCDF / Zarr stack, a STAC catalogue)."""

from __future__ import annotations

import glob
from pathlib import Path

from cmap.errors import ConfigError, DataError


def _expand(spec: str) -> list[str]:
    if spec.startswith("@"):
        listed = Path(spec[1:])
        if not listed.is_file():
            raise DataError(listed, "list of tiles not found")
        lines = [line.strip() for line in listed.read_text().splitlines()]
        return [line for line in lines if line and not line.startswith("#")]
    if glob.has_magic(spec):
        found = sorted(glob.glob(spec))
        if not found:
            raise ConfigError(f"--tiles {spec}: no file or folder matches")
        return found
    if not Path(spec).exists():
        raise DataError(spec, "tile not found")
    return [spec]


def tile_name(tile: Path) -> str:
    """The name of a tile's outputs: the file's stem, or the folder's name."""
    return tile.name if tile.is_dir() and tile.suffix != ".zarr" else tile.stem


def list_tiles(specs: list[str]) -> dict[str, Path]:
    """Tile name -> absolute path, in the order given; two tiles of one name are refused
    (their maps would be written to the same file)."""
    tiles: dict[str, Path] = {}
    for spec in specs:
        for entry in _expand(spec):
            path = Path(entry).resolve()
            if not path.exists():
                raise DataError(entry, "tile not found")
            name = tile_name(path)
            if name in tiles and tiles[name] != path:
                raise ConfigError(
                    f"tiles {tiles[name]} and {path} would both be mapped to {name}.tif: give "
                    "tiles distinct names"
                )
            tiles[name] = path
    if not tiles:
        raise ConfigError("--tiles lists no tile")
    return tiles
