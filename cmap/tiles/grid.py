"""Tiles of a STAC catalogue: the cells of a regular grid in one CRS (`--grid SIZE`), or the
Sentinel-2 MGRS tiles its items name (`--grid mgrs`). Each cell is the catalogue read with
`bounds` (and, for MGRS, the tile's own UTM CRS), so neighbouring cells lie on one pixel
grid and their maps mosaic without resampling."""

from __future__ import annotations

import math
from pathlib import Path

from cmap.errors import ConfigError, DataError

MGRS_KEYS = ("s2:mgrs_tile", "mgrs:utm_zone")


def _footprint(item, crs: str) -> tuple[float, float, float, float] | None:
    """An item's bounds in `crs`: from its own grid (proj:transform, proj:shape) where it
    gives one (exact in its own CRS), else from its WGS 84 bbox."""
    from rasterio.warp import transform_bounds

    props, epsg = item.properties, _epsg(item)
    transform, shape = props.get("proj:transform"), props.get("proj:shape")
    if epsg is not None and transform and shape:
        a, _, c, _, e, f = transform[:6]
        xs, ys = (c, c + a * shape[1]), (f, f + e * shape[0])
        native = (min(xs), min(ys), max(xs), max(ys))
        return transform_bounds(f"EPSG:{epsg}", crs, *native)
    if item.bbox is None:
        return None
    return transform_bounds("EPSG:4326", crs, *item.bbox[:2], *item.bbox[-2:])


def regular(path: Path, items: list, size: float, crs: str | None, resolution: float | None):
    """Cells of `size` (crs units, a multiple of `resolution`) with an edge at 0, those that
    meet an item's footprint: name -> data arguments (`bounds`)."""
    if not crs or not resolution:
        raise ConfigError(
            f"--grid {size:g}: a regular grid needs the output grid: --data.init_args.crs "
            "(e.g. EPSG:32631) and --data.init_args.resolution (e.g. 10)"
        )
    steps = size / resolution
    if size <= 0 or abs(steps - round(steps)) > 1e-9:
        raise ConfigError(
            f"--grid {size:g}: give a positive multiple of the resolution {resolution:g}"
        )
    cells: dict[str, dict] = {}
    for item in items:
        box = _footprint(item, crs)
        if box is None:
            raise DataError(path, f"item {item.id} has no bbox: a grid cannot place it")
        west, south, east, north = box
        for i in range(math.floor(west / size), math.ceil(east / size)):
            for j in range(math.floor(south / size), math.ceil(north / size)):
                x0, y0 = i * size, j * size
                name = f"E{x0:.0f}_N{y0:.0f}"
                cells[name] = {"bounds": [x0, y0, x0 + size, y0 + size]}
    return dict(sorted(cells.items(), key=lambda kv: (-kv[1]["bounds"][1], kv[1]["bounds"][0])))


def _mgrs(item) -> str | None:
    props = item.properties
    if "s2:mgrs_tile" in props:
        return str(props["s2:mgrs_tile"]).removeprefix("T")
    if "mgrs:utm_zone" in props:
        band, square = props.get("mgrs:latitude_band", ""), props.get("mgrs:grid_square", "")
        return f"{int(props['mgrs:utm_zone']):02d}{band}{square}"
    return None


def _epsg(item) -> int | None:
    code = item.properties.get("proj:epsg") or item.properties.get("proj:code")
    if code is None:
        return None
    return int(str(code).removeprefix("EPSG:"))


def mgrs(path: Path, items: list, resolution: float | None) -> dict[str, dict]:
    """One tile per MGRS tile the items name: its UTM CRS (`proj:epsg`) and the union of its
    items' projected footprints, snapped outward to `resolution` (default the items' pixel)."""
    tiles: dict[str, dict] = {}
    for item in items:
        name, epsg = _mgrs(item), _epsg(item)
        if name is None:
            raise DataError(
                path, f"item {item.id} names no MGRS tile (s2:mgrs_tile, or the mgrs extension)"
            )
        if epsg is None:
            raise DataError(path, f"item {item.id} gives no projection (proj:epsg or proj:code)")
        transform = item.properties.get("proj:transform")
        pixel = resolution or (abs(transform[0]) if transform else None)
        if not pixel:
            raise ConfigError(
                f"item {item.id} gives no pixel size (proj:transform): set "
                "--data.init_args.resolution"
            )
        crs = f"EPSG:{epsg}"
        west, south, east, north = _footprint(item, crs)
        tile = tiles.setdefault(f"T{name}", {"crs": crs, "resolution": pixel, "bounds": None})
        if tile["crs"] != crs:
            raise DataError(path, f"MGRS tile {name} has items in {tile['crs']} and {crs}")
        if tile["bounds"] is not None:
            w, s, e, n = tile["bounds"]
            west, south, east, north = min(w, west), min(s, south), max(e, east), max(n, north)
        tile["bounds"] = [west, south, east, north]
    for tile in tiles.values():
        step = tile["resolution"]
        w, s, e, n = tile["bounds"]
        tile["bounds"] = [
            math.floor(w / step) * step,
            math.floor(s / step) * step,
            math.ceil(e / step) * step,
            math.ceil(n / step) * step,
        ]
    return dict(sorted(tiles.items()))


def grid_tiles(path: Path, grid: str, spec) -> dict[str, dict]:
    """The tiles of the STAC catalogue `path` on `grid` (a size, or `mgrs`), given the data
    arguments `spec` (crs, resolution, bbox, time_range): name -> data arguments."""
    from cmap.data.cubes.stac import _items, is_stac, select

    if not is_stac(path):
        raise ConfigError(f"--grid tiles a STAC catalogue (.json): {path} is not one")
    if spec.get("bounds") is not None:
        raise ConfigError("--grid sets each tile's bounds: leave out --data.init_args.bounds")
    everything = _items(path)
    items = select(everything, spec.get("time_range"), spec.get("bbox"))
    if not items:
        raise DataError(
            path,
            f"the grid meets no data: none of its {len(everything)} items lies in the bbox "
            f"{spec.get('bbox')} and time range {spec.get('time_range')}",
        )
    if grid == "mgrs":
        tiles = mgrs(path, items, spec.get("resolution"))
    else:
        try:
            size = float(grid)
        except ValueError:
            raise ConfigError(f"--grid {grid}: give a cell size (crs units) or mgrs") from None
        tiles = regular(path, items, size, spec.get("crs"), spec.get("resolution"))
    if spec.get("bbox") is not None:
        tiles = {n: t for n, t in tiles.items() if _meets(t, spec["bbox"], spec.get("crs"))}
    if not tiles:
        raise DataError(path, f"the grid meets no data within the bbox {spec['bbox']}")
    return tiles


def _meets(tile: dict, bbox, crs: str | None) -> bool:
    from rasterio.warp import transform_bounds

    west, south, east, north = transform_bounds(tile.get("crs", crs), "EPSG:4326", *tile["bounds"])
    return not (west > bbox[2] or east < bbox[0] or south > bbox[3] or north < bbox[1])
