"""Opening a cube from its configuration: a GeoTIFF folder (`Cube`) or NetCDF / Zarr data
(`Stack`), with the settings of its `meta.yaml` filling what the configuration leaves out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.stac import is_stac, load_stac
from cmap.data.cubes.stack import Stack
from cmap.data.layers import is_stack
from cmap.data.meta import Settings, read_meta
from cmap.data.season import Season
from cmap.errors import ConfigError


def open_cube(
    source: str,
    bands: list[str] | None,
    nodata,
    scale,
    offset,
    quality: tuple,
    resampling: str,
    time_range: list[str] | None,
    year: int | None,
    season_start: str | None,
    season_length: int,
    season_year: str | None = None,
    stac: dict | None = None,
) -> tuple[Cube | Stack, Season]:
    """The cube and its season (arguments as in `CubeDataModule`; `stac`: its assets, crs,
    resolution and bbox); the `meta.yaml` read is the one in the cube folder, else beside
    it."""
    folder = Path(source)
    meta = (read_meta(folder) if folder.is_dir() else {}) or read_meta(folder.parent)
    per_band = [v for v in (nodata, scale, offset) if isinstance(v, dict)]
    settings = Settings(
        meta,
        bands,
        None if per_band else scale,
        None if per_band else nodata,
        season_start,
        season_length,
        season_year,
    )
    stac = {k: v for k, v in (stac or {}).items() if v is not None}
    if stac and not is_stac(source):
        raise ConfigError(f"{', '.join(stac)} apply to STAC catalogues; {folder} is not one")
    if not is_stack(source) and not is_stac(source):
        if per_band or offset is not None or time_range is not None:
            raise ConfigError(
                "offset, time_range and per-band nodata or scale are read from NetCDF / "
                f"Zarr stacks; {folder} is a GeoTIFF cube"
            )
        cube = Cube(folder, settings.bands, settings.nodata, settings.scale, *quality)
        return cube, settings.season
    if time_range is None and year is not None:
        first = np.datetime64(settings.season.first_date(year), "D")
        time_range = [str(first), str(first + settings.season.length - 1)]
    if is_stac(source):
        if not settings.bands:
            raise ConfigError(f"name the bands to read from the STAC catalogue {folder}")
        source = load_stac(
            source,
            settings.bands,
            **stac,
            time_range=time_range,
            resampling=resampling,
            quality_band=quality[0],
        )
    stack = Stack(
        source,
        settings.bands,
        nodata if nodata is not None else meta.get("nodata"),
        scale if scale is not None else meta.get("scale"),
        offset,
        *quality,
        resampling=resampling,
        time_range=time_range,
    )
    if isinstance(source, xr.Dataset):
        stack.files = [folder]  # the catalogue: what a resumed map checks
    return stack, settings.season
