"""Raster cubes (docs/reference/data_formats.md §2): a folder of per-date GeoTIFFs, read
window by window.

One file per date holding every band (band descriptions name them), or one file per band and
date, `<anything>_<BAND>_<DATE>.tif`; ISO dates (`YYYY-MM-DD`, `YYYYMMDD`) in the file names.
Every file shares the first file's CRS, transform and size (a file that differs is named)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.env import set_gdal_config
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from cmap.data.cubes.quality import quality_rule
from cmap.data.cubes.source import CubeOptions, CubeSource, Opener
from cmap.errors import ConfigError, DataError, preview

# Each window is read once: GDAL's block cache (5 % of RAM by default) would only grow the
# process and slow reads down. A user's own GDAL_CACHEMAX wins.
if "GDAL_CACHEMAX" not in os.environ:
    set_gdal_config("GDAL_CACHEMAX", 64 * 2**20)

DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
SUFFIXES = (".tif", ".tiff")


def parse_date(name: str) -> np.datetime64 | None:
    """The first valid ISO date (YYYY-MM-DD or YYYYMMDD) in a file name, else None."""
    for match in DATE.finditer(name):
        try:
            return np.datetime64("-".join(match.groups()), "D")
        except ValueError:
            continue
    return None


@dataclass
class CubeFile:
    path: Path
    date: np.datetime64
    band: str | None  # per-band layout: the band this file holds


def _list_files(folder: Path) -> list[CubeFile]:
    if not folder.is_dir():
        raise DataError(folder, "cube folder not found")
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        date = parse_date(path.stem)
        if date is None:
            raise DataError(path, "no date (YYYY-MM-DD or YYYYMMDD) in the file name")
        prefix = path.stem[: DATE.search(path.stem).start()].rstrip("_-")
        band = prefix.rsplit("_", 1)[-1] if "_" in prefix else None
        found.append(CubeFile(path, date, band))
    if not found:
        raise DataError(folder, "holds no GeoTIFF (.tif) file")
    return found


class Cube(CubeSource):
    """A folder of per-date GeoTIFFs as a cube (`options`: `bands`, `nodata` and `scale` as
    single values, the quality rule; see `CubeOptions`). Every band of the files is
    available by default (band descriptions, or the band part of per-band file names), and
    a file's own nodata applies unless one is declared."""

    def __init__(self, folder: str | Path, options: CubeOptions = CubeOptions()):  # noqa: B008
        self.folder = Path(folder)
        if any(isinstance(v, dict) for v in (options.nodata, options.scale)):
            raise ConfigError(
                f"per-band nodata or scale are read from NetCDF / Zarr stacks; {self.folder} "
                "is a GeoTIFF cube (give one value)"
            )
        bands, nodata, quality_band = options.bands, options.nodata, options.quality_band
        scale = 1.0 if options.scale is None else options.scale
        files = _list_files(self.folder)
        per_band = all(f.band for f in files) and len({f.band for f in files}) > 1
        infos = [self._describe(f.path) for f in files]  # each file opened once here
        reference = infos[0]
        for f, info in zip(files[1:], infos[1:]):
            self._check_alike(f.path, info, reference)
        self.crs, self.transform = reference["crs"], reference["transform"]
        self.height, self.width = reference["height"], reference["width"]
        self.profile = reference["profile"]
        # A declared nodata applies to every file; otherwise each file's own value does.
        self._nodata = {
            f.path: nodata if nodata is not None else i["nodata"] for f, i in zip(files, infos)
        }
        self.scale = scale
        if per_band:
            available = sorted({f.band for f in files})
            self._sources = self._per_band_sources(files)
        else:
            available = reference["descriptions"]
            if any(d is None for d in available):
                if bands is None:
                    raise DataError(
                        files[0].path,
                        "band descriptions are missing; name the bands in the configuration",
                    )
                if len(bands) != reference["count"]:
                    raise DataError(
                        files[0].path,
                        f"has {reference['count']} bands but {len(bands)} are named: {bands}",
                    )
                available = list(bands)
            self._sources = self._stacked_sources(files, infos, available)
        self.bands = list(bands) if bands else list(available)
        wanted = self.bands + ([quality_band] if quality_band else [])
        unknown = [b for b in wanted if b not in available]
        if unknown:
            raise DataError(
                self.folder, f"unknown band(s) {unknown}; the cube has {preview(available, 12)}"
            )
        missing = {
            str(date): [b for b in wanted if b not in sources]
            for date, sources in self._sources.items()
            if any(b not in sources for b in wanted)
        }
        if missing:
            date, bands_missing = next(iter(missing.items()))
            raise DataError(
                self.folder,
                f"{len(missing)} date(s) lack band(s), e.g. {date} has no {bands_missing}",
            )
        self._check_dtypes(wanted, {f.path: i["profile"]["dtype"] for f, i in zip(files, infos)})
        self.dates = np.array(sorted(self._sources), dtype="datetime64[D]")
        self.quality_band = quality_band
        self.quality_masked, self.quality_keep = quality_rule(
            quality_band, options.quality_masked, options.quality_keep
        )
        self._open: dict[Path, rasterio.DatasetReader] = {}

    # -- checks --------------------------------------------------------------------------
    @staticmethod
    def _describe(path: Path) -> dict:
        try:
            with rasterio.open(path) as src:
                return {
                    "crs": src.crs,
                    "transform": src.transform,
                    "height": src.height,
                    "width": src.width,
                    "count": src.count,
                    "nodata": src.nodata,
                    "descriptions": list(src.descriptions),
                    "profile": src.profile,
                }
        except RasterioIOError as err:
            raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err

    @staticmethod
    def _check_alike(path: Path, info: dict, reference: dict) -> None:
        first = "the first file"
        if info["crs"] != reference["crs"]:
            raise DataError(path, f"CRS {info['crs']} differs from {first}'s {reference['crs']}")
        if (info["height"], info["width"]) != (reference["height"], reference["width"]):
            raise DataError(
                path,
                f"size {info['width']} x {info['height']} differs from {first}'s "
                f"{reference['width']} x {reference['height']}",
            )
        if not info["transform"].almost_equals(reference["transform"]):
            raise DataError(
                path,
                f"transform {tuple(info['transform'])[:6]} differs from {first}'s "
                f"{tuple(reference['transform'])[:6]} (files must share one pixel grid)",
            )

    def _check_dtypes(self, bands: list[str], dtypes: dict[Path, str]) -> None:
        """A band is stored with one data type at every date (a date in float reflectance
        among uint16 counts is another product, not the same band)."""
        for band in bands:
            seen: dict[str, Path] = {}
            for sources in self._sources.values():
                path = sources[band][0]
                seen.setdefault(dtypes[path], path)
            if len(seen) > 1:
                (first, a), (other, b) = list(seen.items())[:2]
                raise DataError(
                    b,
                    f"band {band} is stored as {other} but as {first} in {a.name}; every date "
                    "of a band must have one data type (and scale)",
                )

    def _per_band_sources(self, files: list[CubeFile]) -> dict:
        sources: dict = {}
        for f in files:
            date_sources = sources.setdefault(f.date, {})
            if f.band in date_sources:
                raise DataError(f.path, f"a second file for band {f.band} on {f.date}")
            date_sources[f.band] = (f.path, 1)
        return sources

    @staticmethod
    def _stacked_sources(files: list[CubeFile], infos: list[dict], bands: list[str]) -> dict:
        sources: dict = {}
        count = len(bands)
        for f, info in zip(files, infos):
            if f.date in sources:
                raise DataError(f.path, f"a second file for {f.date}")
            if info["count"] != count:
                raise DataError(f.path, f"has {info['count']} bands, the first file {count}")
            names = info["descriptions"] if all(info["descriptions"]) else bands
            if names != bands:
                raise DataError(f.path, f"bands {names} differ from the first file's {bands}")
            sources[f.date] = {b: (f.path, i + 1) for i, b in enumerate(bands)}
        return sources

    # -- reading -------------------------------------------------------------------------
    def _dataset(self, path: Path):
        if path not in self._open:
            try:
                self._open[path] = rasterio.open(path)
            except RasterioIOError as err:
                raise DataError(path, f"cannot be read as a GeoTIFF ({err})") from err
        return self._open[path]

    def close(self) -> None:
        for dataset in self._open.values():
            dataset.close()
        self._open.clear()

    def __getstate__(self):  # open files stay with their process (DataLoader workers)
        return self.__dict__ | {"_open": {}}

    def _read(self, date, bands: list[str], window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Bands of one date -> values [len(bands), h, w] and where any of the cube's bands
        (not the quality band) holds its file's nodata [h, w], one read per file."""
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for c, band in enumerate(bands):
            path, index = self._sources[date][band]
            by_file.setdefault(path, []).append((c, index))
        out, nodata = None, np.zeros((int(window.height), int(window.width)), bool)
        for path, pairs in by_file.items():
            try:
                data = self._dataset(path).read([i for _, i in pairs], window=window)
            except RasterioIOError as err:
                raise DataError(path, f"cannot be read ({err})") from err
            if out is None:
                out = np.empty((len(bands), *data.shape[1:]), data.dtype)
            out[[c for c, _ in pairs]] = data
            own = [k for k, (c, _) in enumerate(pairs) if c < len(self.bands)]
            if self._nodata[path] is not None and own:
                nodata |= (data[own] == self._nodata[path]).any(axis=0)
        return out, nodata

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Values [T, C, h, w] float32 (scaled) and valid [T, h, w] bool of a window.

        A date is invalid at a pixel where any band is nodata (the declared value, else its
        file's) or NaN, or where the quality band holds a masked value.
        """
        h, w = int(window.height), int(window.width)
        values = np.empty((len(self.dates), len(self.bands), h, w), np.float32)
        valid = np.ones((len(self.dates), h, w), bool)
        wanted = self.bands + ([self.quality_band] if self.quality_band else [])
        for t, date in enumerate(self.dates):
            raw, bad = self._read(date, wanted, window)
            data = raw[: len(self.bands)]
            if data.dtype.kind == "f":
                bad |= np.isnan(data).any(axis=0)
            if self.quality_keep is not None:
                bad = bad | ~np.isin(raw[-1], self.quality_keep)
            elif self.quality_band:
                bad = bad | np.isin(raw[-1], self.quality_masked)
            valid[t] = ~bad
            values[t] = data
        values *= self.scale
        return values, valid


GEOTIFF = Opener(
    "GeoTIFF folder",
    lambda source: True,  # the last kind tried: a folder that is none of the others
    Cube,
    frozenset({"bands", "nodata", "scale", "quality_band", "quality_masked", "quality_keep"})
    | {"resampling"},  # one grid: nothing to resample
)
