"""Cubes from STAC: the items of a static catalogue, a collection, an ItemCollection
(GeoJSON FeatureCollection) or one item, loaded lazily with odc-stac onto one grid (its CRS
and resolution, or the items' own) as an xarray Dataset that `Stack` reads window by window.

Bands are asset keys, or mapped to them (`assets: {B04: red}`); acquisitions of one solar day
are merged. Local assets are checked before anything is read; a remote asset that cannot be
read stops the run with its URL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from cmap.errors import ConfigError, DataError, preview

SUFFIXES = (".json", ".geojson")


def is_stac(source: str | Path) -> bool:
    return Path(source).suffix.lower() in SUFFIXES


def _items(path: Path) -> list:
    import pystac

    if not path.exists():
        raise DataError(path, "STAC catalogue not found")
    try:
        obj = pystac.read_file(str(path))
    except (pystac.STACError, ValueError, KeyError) as err:
        try:
            return list(pystac.ItemCollection.from_file(str(path)))
        except Exception:  # not an ItemCollection either: report the first reason
            raise DataError(path, f"cannot be read as STAC ({err})") from err
    if isinstance(obj, pystac.Item):
        return [obj]
    return list(obj.get_items(recursive=True))


def _day(item) -> np.datetime64:
    when = item.datetime or item.common_metadata.start_datetime
    return np.datetime64(when.replace(tzinfo=None), "D")


def select(items: list, time_range=None, bbox=None, projected=None) -> list:
    """The items within `time_range`, `bbox` (WGS 84) and `projected` ((crs, bounds): an
    area in a projection's units); an item without a bbox is always kept."""
    if time_range is not None:
        first, last = (np.datetime64(str(d), "D") for d in time_range)
        items = [i for i in items if first <= _day(i) <= last]
    if projected:
        from rasterio.warp import transform_bounds

        bbox = transform_bounds(projected[0], "EPSG:4326", *projected[1])
    if bbox is not None:
        west, south, east, north = bbox
        items = [
            i
            for i in items
            if i.bbox is None
            or not (i.bbox[0] > east or i.bbox[2] < west or i.bbox[1] > north or i.bbox[3] < south)
        ]
    return items


def load_stac(
    path: str | Path,
    bands: list[str],
    assets: dict[str, str] | None = None,
    crs: str | None = None,
    resolution: float | None = None,
    bbox: list[float] | None = None,
    time_range: list[str] | None = None,
    resampling: str = "nearest",
    quality_band: str | None = None,
    bounds: list[float] | None = None,
) -> xr.Dataset:
    """The catalogue's items within `bbox` (WGS 84 lon / lat: west, south, east, north) or
    `bounds` (the same in `crs` units, pixel edges snapped to multiples of `resolution`) and
    `time_range`, loaded lazily as a Dataset with one variable per band (and quality band)."""
    try:
        import odc.stac
    except ImportError as err:
        raise ConfigError("STAC catalogues need odc-stac: pip install 'cmap[geo]'") from err
    path = Path(path)
    if bool(crs) != bool(resolution):
        raise ConfigError("give crs and resolution together (or neither: the items' own grid)")
    if bounds is not None and (bbox is not None or not crs or len(bounds) != 4):
        raise ConfigError(
            f"bounds {bounds}: give west, south, east, north in the units of crs, with crs "
            "and resolution, and without bbox"
        )
    items = select(_items(path), time_range, bbox, bounds and (crs, bounds))
    if not items:
        raise DataError(path, "holds no item in the bounding box and time range")
    wanted = list(bands) + ([quality_band] if quality_band else [])
    keys = {band: (assets or {}).get(band, band) for band in wanted}
    for item in items:
        missing = [b for b, key in keys.items() if key not in item.assets]
        if missing:
            raise DataError(
                path,
                f"item {item.id} has no asset {keys[missing[0]]!r} (band {missing[0]}); its "
                f"assets are {preview(sorted(item.assets), 12)}",
            )
        for band, key in keys.items():
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            if "://" not in href and not Path(href).exists():
                raise DataError(href, f"asset {key!r} of item {item.id} (band {band}) not found")
    modes = {key: resampling for key in keys.values()}
    if quality_band:
        modes[keys[quality_band]] = "nearest"  # classes are never averaged
    extent = {"bbox": tuple(bbox)} if bbox is not None else {}
    if bounds is not None:
        extent = {"x": (bounds[0], bounds[2]), "y": (bounds[1], bounds[3])}
    grid = {"crs": crs, "resolution": resolution} if crs and resolution else {}
    ds = odc.stac.load(
        items,
        bands=list(dict.fromkeys(keys.values())),
        groupby="solar_day",
        chunks={"x": 1024, "y": 1024},
        resampling=modes,
        **grid,
        **extent,
    )
    ds = ds.rename({key: band for band, key in keys.items() if key != band})
    ds.attrs["assets"] = {
        band: [item.assets[key].get_absolute_href() or item.assets[key].href for item in items]
        for band, key in keys.items()
    }
    ds.attrs["source"] = str(path)
    ds.attrs["name"] = str(path)
    return ds


def unreadable_asset(ds: xr.Dataset, band: str) -> str | None:
    """The first asset of `band` that cannot be opened (to name it when a read fails)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    for href in ds.attrs.get("assets", {}).get(band, []):
        try:
            rasterio.open(href).close()
        except RasterioIOError:
            return href
    return None
