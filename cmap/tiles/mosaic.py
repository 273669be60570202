"""Tiles' maps as one mosaic per CRS: GDAL virtual rasters (VRT) that point at the tiles'
files, so a GIS, `cmap assess` or `cmap parcels` read a country's map as one file. Tiles of
one CRS must share the pixel size and lie on one pixel grid (as Sentinel-2 tiles of one UTM
zone do)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio

from cmap.errors import DataError
from cmap.io.atomic import atomic_path

GRID_TOLERANCE = 1e-6  # of a pixel: how far a tile may lie off its CRS's pixel grid
TILE_TAGS = ("SOURCE", "MODEL")  # tags that differ from tile to tile (not the mosaic's)


@dataclass
class Placed:
    """One tile's file on its CRS's grid: its offsets in pixels and its size."""

    path: Path
    col: int
    row: int
    width: int
    height: int


def _grid(paths: list[Path]) -> tuple[dict, list[Placed]]:
    """The grid holding every tile (profile, transform) and where each lies on it."""
    with rasterio.open(paths[0]) as first:
        res, crs = first.res, first.crs
    bounds = []
    for path in paths:
        with rasterio.open(path) as src:
            if src.res != res:
                raise DataError(
                    path,
                    f"has pixels of {src.res[0]:g} x {src.res[1]:g}, other tiles of {crs} "
                    f"{res[0]:g} x {res[1]:g}: a mosaic needs one pixel size per CRS",
                )
            bounds.append((src.bounds, src.width, src.height))
    left = min(b.left for b, *_ in bounds)
    top = max(b.top for b, *_ in bounds)
    right = max(b.right for b, *_ in bounds)
    bottom = min(b.bottom for b, *_ in bounds)
    placed = []
    for path, (b, width, height) in zip(paths, bounds):
        col, row = (b.left - left) / res[0], (top - b.top) / res[1]
        if abs(col - round(col)) > GRID_TOLERANCE or abs(row - round(row)) > GRID_TOLERANCE:
            raise DataError(
                path,
                f"lies off the pixel grid of the other tiles of {crs} (by a fraction of a "
                "pixel): a mosaic needs tiles on one grid",
            )
        placed.append(Placed(path, round(col), round(row), width, height))
    size = (round((right - left) / res[0]), round((top - bottom) / res[1]))
    return {"crs": crs, "transform": (left, res[0], 0.0, top, 0.0, -res[1]), "size": size}, placed


def _source(tile: Placed, band: str) -> str:
    return (
        f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(tile.path.name)}'
        f"</SourceFilename><SourceBand>{band}</SourceBand>"
        f'<SrcRect xOff="0" yOff="0" xSize="{tile.width}" ySize="{tile.height}"/>'
        f'<DstRect xOff="{tile.col}" yOff="{tile.row}" xSize="{tile.width}" '
        f'ySize="{tile.height}"/></SimpleSource>'
    )


def _metadata(tags: dict[str, str]) -> str:
    items = "".join(f'<MDI key="{escape(k)}">{escape(v)}</MDI>' for k, v in sorted(tags.items()))
    return f"<Metadata>{items}</Metadata>"


def write_vrt(paths: list[Path], out: Path) -> Path:
    """One VRT over `paths` (class maps, or probabilities files: the first's bands, band
    names, colours, nodata, mask and tags; tags that name one tile are left out)."""
    grid, placed = _grid(paths)
    with rasterio.open(paths[0]) as src:
        dtypes, count, nodata = src.dtypes, src.count, src.nodata
        names, tags = src.descriptions, src.tags()
        colours = src.colormap(1) if count == 1 else None
        masked = nodata is None and src.mask_flag_enums[0] != [rasterio.enums.MaskFlags.all_valid]
    gdal_type = {"uint8": "Byte", "float16": "Float32", "float32": "Float32"}[dtypes[0]]
    width, height = grid["size"]
    bands = []
    for k in range(count):
        parts = [f'<VRTRasterBand dataType="{gdal_type}" band="{k + 1}">']
        if names[k]:
            parts.append(f"<Description>{escape(names[k])}</Description>")
        if nodata is not None:
            value = "nan" if math.isnan(nodata) else f"{nodata:g}"
            parts.append(f"<NoDataValue>{value}</NoDataValue>")
        if colours:
            entries = "".join(
                f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>'
                for _, (r, g, b, a) in sorted(colours.items())
            )
            parts.append(f"<ColorInterp>Palette</ColorInterp><ColorTable>{entries}</ColorTable>")
        parts += [_source(tile, str(k + 1)) for tile in placed]
        parts.append("</VRTRasterBand>")
        bands.append("".join(parts))
    mask = ""
    if masked:  # uint8 probabilities: nodata is the tiles' mask band
        sources = "".join(_source(tile, "mask,1") for tile in placed)
        mask = f'<MaskBand><VRTRasterBand dataType="Byte">{sources}</VRTRasterBand></MaskBand>'
    kept = {k: v for k, v in tags.items() if k not in TILE_TAGS}
    kept["TILES"] = ",".join(tile.path.name for tile in placed)
    text = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        f"<SRS>{escape(grid['crs'].to_wkt())}</SRS>"
        f"<GeoTransform>{', '.join(repr(v) for v in grid['transform'])}</GeoTransform>"
        f"{_metadata(kept)}{''.join(bands)}{mask}</VRTDataset>\n"
    )
    with atomic_path(out) as partial:
        partial.write_text(text)
    return out


def mosaics(maps: list[Path], folder: Path, probabilities: bool) -> list[Path]:
    """`mosaic.vrt` (and `mosaic_probabilities.vrt`) over the class maps, one pair per CRS
    (`mosaic_EPSG_32631.vrt`, ... when the tiles lie in several)."""
    by_crs: dict[str, list[Path]] = {}
    for path in sorted(maps):
        with rasterio.open(path) as src:
            by_crs.setdefault(src.crs.to_string(), []).append(path)
    written = []
    for crs, paths in sorted(by_crs.items()):
        stem = "mosaic" if len(by_crs) == 1 else f"mosaic_{crs.replace(':', '_')}"
        written.append(write_vrt(paths, folder / f"{stem}.vrt"))
        if probabilities:
            files = [p.with_name(f"{p.stem}_probabilities.tif") for p in paths]
            written.append(write_vrt(files, folder / f"{stem}_probabilities.vrt"))
    return written
