"""What a cube is to cmap, whatever its files: `CubeSource` (the interface every kind of cube
has), `CubeOptions` (how its files are read, written once for every kind) and the table of
`OPENERS` that turns a configured `cube` into one, with the settings of its `meta.yaml`
filling what the configuration leaves out."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.windows import Window

from cmap.data.cubes.windows import square_windows
from cmap.data.meta import Settings, read_meta
from cmap.data.season import Season
from cmap.errors import ConfigError


@dataclass(frozen=True)
class CubeOptions:
    """How a cube's files are read (the reading arguments of `CubeDataModule`).

    Args:
        bands: band names to read, in model order; default the `meta.yaml`'s, else every band
            of the files (GeoTIFF band descriptions, per-band file names, or each (time, y, x)
            variable of a single NetCDF / Zarr file).
        nodata, scale: stored value meaning "no data", and stored value x scale =
            reflectance; default the `meta.yaml`'s, else the files' own (nodata; for NetCDF /
            Zarr also `scale_factor`), else scale 1. For NetCDF / Zarr, one value or a
            `{band: value}` mapping.
        offset: NetCDF / Zarr: added after scaling, one value or per band (default the
            files' `add_offset`).
        quality_band: optional band (e.g. a cloud mask, SCL) flagging unusable dates.
        quality_masked: quality values that mask a pixel's date, or
        quality_keep: the only quality values that keep it (one of the two; for a band named
            SCL, Sentinel-2 L2A's scene classification, the default keeps vegetation, bare
            soil, water and unclassified).
        resampling: how a NetCDF / Zarr / STAC band on a coarser grid reaches the finest one.
        stac_assets, crs, resolution, bbox, bounds: for a STAC catalogue: band -> asset key
            where they differ; the output grid's CRS and pixel size (default the items' own);
            the area (WGS 84 west, south, east, north), or `bounds`: the area in `crs` units
            (west, south, east, north; with crs and resolution: a cell of a tiling grid).
        time_range: first and last day read from NetCDF / Zarr / STAC (`[YYYY-MM-DD,
            YYYY-MM-DD]`); default the season `year`'s days when it is set, else every day.
    """

    bands: list[str] | None = None
    nodata: float | dict[str, float] | None = None
    scale: float | dict[str, float] | None = None
    offset: float | dict[str, float] | None = None
    quality_band: str | None = None
    quality_masked: list[int] | None = None
    quality_keep: list[int] | None = None
    resampling: Literal["nearest", "bilinear"] = "nearest"
    stac_assets: dict[str, str] | None = None
    crs: str | None = None
    resolution: float | None = None
    bbox: list[float] | None = None
    time_range: list[str] | None = None
    bounds: list[float] | None = None

    def given(self) -> set[str]:
        """The options set to something other than their defaults."""
        return {f.name for f in fields(self) if getattr(self, f.name) != f.default}


class CubeSource(abc.ABC):
    """A raster time series, T dates x C bands on one grid, read window by window.

    Every kind sets `folder` (what messages name), `bands` (C names, model order), `dates`
    ([T] datetime64[D], sorted), `crs`, `transform`, `width`, `height` and `profile` (the
    GeoTIFF profile of maps on its grid)."""

    folder: Path
    bands: list[str]
    dates: np.ndarray
    width: int
    height: int
    profile: dict

    @abc.abstractmethod
    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Values [T, C, h, w] float32 (scaled; anything where invalid) and valid [T, h, w]."""

    def windows(self, size: int, offset: int = 0) -> list[Window]:
        """Row-major windows of `size` pixels a side (see `square_windows`)."""
        return square_windows(self.width, self.height, size, offset)

    def close(self) -> None:  # noqa: B027 (a kind without open files has nothing to do)
        """Release open files (a reader reopens them when it reads again)."""

    def source_files(self) -> list[Path]:
        """The files whose names, sizes and times a resumed map checks."""
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@dataclass(frozen=True)
class Opener:
    """One kind of cube: `accepts(source)` tells it by its path, `open(source, options)` opens
    it; `takes` are the `CubeOptions` it reads (others given are refused in one line)."""

    name: str
    accepts: Callable[[str], bool]
    open: Callable[[str, CubeOptions], CubeSource]
    takes: frozenset[str]


OPENERS: list[Opener] = []  # tried in order: the first that accepts a source opens it


def register(opener: Opener) -> None:
    """Put a kind of cube first in the table (a user's own, or cmap's at import)."""
    OPENERS.insert(0, opener)


def open_cube(
    source: str,
    options: CubeOptions,
    season_start: str | None,
    season_length: int,
    season_year: str | None = None,
    year: int | None = None,
) -> tuple[CubeSource, Season]:
    """The cube and its season; the `meta.yaml` read is the one in the cube folder, else
    beside it (bands, nodata, scale and season start when the options leave them out)."""
    opener = next(o for o in OPENERS if o.accepts(source))
    refused = sorted(options.given() - opener.takes)
    if refused:
        raise ConfigError(
            f"{source} is a {opener.name}, which takes no {', '.join(refused)} (options of "
            "other kinds of cube)"
        )
    folder = Path(source)
    meta = (read_meta(folder) if folder.is_dir() else {}) or read_meta(folder.parent)
    per_band = [v for v in (options.nodata, options.scale, options.offset) if isinstance(v, dict)]
    settings = Settings(
        meta,
        options.bands,
        None if per_band else options.scale,
        None if per_band else options.nodata,
        season_start,
        season_length,
        season_year,
    )
    filled = replace(
        options,
        bands=settings.bands,
        nodata=options.nodata if options.nodata is not None else meta.get("nodata"),
        scale=options.scale if options.scale is not None else meta.get("scale"),
    )
    if "time_range" in opener.takes and options.time_range is None and year is not None:
        first = np.datetime64(settings.season.first_date(year), "D")
        filled = replace(filled, time_range=[str(first), str(first + settings.season.length - 1)])
    return opener.open(source, filled), settings.season
