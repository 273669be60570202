"""Labelled pixels from a vector file (GeoPackage, Shapefile, GeoParquet, FlatGeobuf; read with
geopandas / pyogrio): parcel polygons rasterised onto the cube grid (a pixel belongs to the
polygon holding its centre), optionally shrunk by an inward buffer and kept only with enough
pixels; points take their pixel. Each parcel is a group the splits keep whole. Geometries
that give no sample are counted and reported, never dropped in silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.features import rasterize
from rasterio.transform import array_bounds, rowcol
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform

from cmap.errors import ConfigError, DataError, preview

WINDOW = 1024  # pixels a side rasterised at once: memory stays bounded on whole tiles


def read_frame(path: Path, label_column: str | None, id_column: str | None, within=None):
    """A vector file as a GeoDataFrame (geopandas / pyogrio; GeoParquet via pyarrow), refused
    in one line when unreadable, without a CRS, or missing a named column; and how many of its
    geometries were left unread ({"outside": n, "empty": m}). `within` [(bounds, crs), ...]:
    only the geometries whose bounding box meets the box around them all are read, through
    the file's spatial index where it has one, so a national parcel file read for one tile
    stays small. The frame's index is each geometry's feature id in the file (its row for
    GeoParquet)."""
    try:
        import geopandas
    except ImportError as err:  # the optional extra
        raise ConfigError(
            "vector labels need geopandas and pyogrio: pip install 'cmap[geo]'"
        ) from err
    if not path.exists():
        raise DataError(path, "vector file not found")
    unread = {"outside": 0, "empty": 0}
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):  # GeoParquet: via pyarrow
            frame = geopandas.read_parquet(path)
            if within is not None and frame.crs is not None:
                xmin, ymin, xmax, ymax = _bounds_in(within, frame.crs)
                meets = frame.index.isin(frame.cx[xmin:xmax, ymin:ymax].index)
                broken = (frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
                unread["outside"] = int((~meets & ~broken).sum())
                frame = frame[meets | broken]  # the empty ones are read, and named so
        else:
            import pyogrio

            crs = pyogrio.read_info(path)["crs"]
            box = _bounds_in(within, crs) if within is not None and crs else None
            frame = pyogrio.read_dataframe(path, bbox=box, fid_as_index=True)
            if box is not None:  # no geometry (NaN bounds) or an empty one (0, 0, 0, 0)
                fids, bounds = pyogrio.read_bounds(path)  # [N], [4, N]: envelopes only
                empty = ~np.isfinite(bounds).all(axis=0) | (bounds == 0).all(axis=0)
                missed = ~np.isin(fids, frame.index.to_numpy())
                unread = {
                    "outside": int((missed & ~empty).sum()),
                    "empty": int((missed & empty).sum()),
                }
    except Exception as err:  # pyogrio and pyarrow raise their own error families
        raise DataError(path, f"cannot be read as a vector file ({err})") from err
    missing = [c for c in (label_column, id_column) if c is not None and c not in frame.columns]
    if missing:
        columns = [c for c in frame.columns if c != frame.geometry.name]
        raise DataError(path, f"has no column {missing[0]!r}; it has {preview(columns, 12)}")
    if frame.crs is None:
        raise DataError(
            path,
            "has no CRS: cmap cannot place its geometries on the cube (set one, e.g. "
            "with ogr2ogr -a_srs)",
        )
    return frame, unread


def _bounds_in(within, crs) -> tuple[float, float, float, float]:
    """The box around all of `within`'s bounds in `crs`, their edges densified so that a
    reprojected box still holds them."""
    from pyproj import Transformer

    boxes = [
        Transformer.from_crs(_wkt(source), _wkt(crs), always_xy=True).transform_bounds(
            *bounds, densify_pts=21
        )
        for bounds, source in within
    ]
    low, high = np.min(boxes, axis=0), np.max(boxes, axis=0)
    return float(low[0]), float(low[1]), float(high[2]), float(high[3])


def _wkt(crs) -> str:
    """A CRS from rasterio, pyproj or text as text pyproj reads."""
    return crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)


def read_vector(
    path: Path,
    cube,
    label_column: str,
    id_column: str | None = None,
    buffer: float = 0.0,
    min_pixels: int = 1,
    clip: bool = False,
) -> dict[str, np.ndarray]:
    """Pixels of the parcels (polygons) and points of a vector file -> row, col, label,
    poi_id, group (the parcel). `buffer` (metres, or the cube CRS's unit) shrinks each
    polygon first; a parcel left with fewer than `min_pixels` pixels is skipped. A file that
    gives the cube no pixel is refused, or with `clip` (a file over many cubes) gives none."""
    extent = array_bounds(cube.height, cube.width, cube.transform)
    frame, unread = read_frame(path, label_column, id_column, within=[(extent, cube.crs)])
    total = len(frame) + sum(unread.values())
    frame = frame.to_crs(cube.crs)
    ids = (
        frame[id_column].astype(str).to_numpy()
        if id_column
        else np.array([f"f{i}" for i in frame.index])  # the feature id in the file
    )
    labels = frame[label_column]
    no_label = labels.isna().to_numpy() | (labels.astype(str).str.strip() == "").to_numpy()
    geometry = frame.geometry
    broken = (geometry.isna() | geometry.is_empty | ~geometry.is_valid).to_numpy()
    counts: dict[str, int] = {}
    counts["without a label"] = int((no_label & ~broken).sum())
    counts["empty or invalid"] = int(broken.sum()) + unread["empty"]
    keep = ~no_label & ~broken
    if buffer:
        shrunk = geometry.buffer(-abs(buffer))
        polygons = geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
        gone = polygons & keep & shrunk.is_empty.to_numpy()
        counts[f"emptied by the {abs(buffer):g} inward buffer"] = int(gone.sum())
        geometry = geometry.where(~polygons, shrunk)
        keep &= ~gone
    from shapely.geometry import box  # the geo extra, as geopandas

    outside = keep & ~geometry.intersects(box(*extent)).to_numpy()
    if not clip:  # with clip, most of the file lies off this cube by design
        where = f"outside the {getattr(cube, 'kind', 'cube')}"
        counts[where] = unread["outside"] + int(outside.sum())
    keep &= ~outside
    text = labels.astype(str).str.strip().to_numpy()
    pixel_row, pixel_col, owner = _pixels(geometry, np.flatnonzero(keep), cube)
    size = np.bincount(owner, minlength=len(frame))
    small = keep & (size < max(min_pixels, 1))
    counts[f"under {max(min_pixels, 1)} pixel(s)"] = int(small.sum())
    good = ~small[owner]
    pixel_row, pixel_col, owner = pixel_row[good], pixel_col[good], owner[good]
    skipped = {k: v for k, v in counts.items() if v}
    if skipped:
        print(
            f"{path}: {total} geometries, skipped "
            + ", ".join(f"{v} {k}" for k, v in skipped.items())
        )
    if not len(owner) and not clip:
        raise DataError(path, "gives no labelled pixel on the cube (see the counts above)")
    unique_ids, counts_per_id = np.unique(ids[keep & ~small], return_counts=True)
    if (counts_per_id > 1).any():
        raise DataError(path, f"{id_column} repeats, e.g. {preview(unique_ids[counts_per_id > 1])}")
    poi = np.char.add(
        np.char.add(ids[owner].astype(str), "_r"),
        np.char.add(pixel_row.astype(str), np.char.add("_c", pixel_col.astype(str))),
    )
    return {
        "row": pixel_row,
        "col": pixel_col,
        "label": text[owner].astype(str),
        "poi_id": poi,
        "group": ids[owner].astype(str),
    }


def _pixels(geometry, chosen: np.ndarray, cube) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, col and geometry index of every pixel the chosen geometries cover: polygons by
    pixel centre, window by window; points (and lines) at the pixel they touch."""
    import shapely
    from shapely.geometry import box

    rows, cols, owners = [], [], []
    areas = geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    points = chosen[~areas[chosen]]
    coords, part_of = shapely.get_coordinates(geometry.iloc[points].to_numpy(), return_index=True)
    if len(coords):
        r, c = (np.asarray(v) for v in rowcol(cube.transform, coords[:, 0], coords[:, 1]))
        inside = (r >= 0) & (r < cube.height) & (c >= 0) & (c < cube.width)
        rows.append(r[inside])
        cols.append(c[inside])
        owners.append(points[part_of[inside]])
    at = chosen[areas[chosen]]
    polygons = geometry.iloc[at]
    index = polygons.sindex
    for window in cube.windows(WINDOW):
        hits = index.query(box(*window_bounds(window, cube.transform)), predicate="intersects")
        if not len(hits):
            continue
        shape = (int(window.height), int(window.width))
        burned = rasterize(
            ((polygons.iloc[h], int(at[h]) + 1) for h in hits),
            out_shape=shape,
            transform=window_transform(window, cube.transform),
            dtype="int64",
        )
        r, c = np.nonzero(burned)
        rows.append(r + int(window.row_off))
        cols.append(c + int(window.col_off))
        owners.append(burned[r, c] - 1)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    row, col, owner = (np.concatenate(v).astype(np.int64) for v in (rows, cols, owners))
    pixel = row * cube.width + col
    _, first = np.unique(pixel, return_index=True)  # a pixel in two geometries: the first one
    first = np.sort(first)
    return row[first], col[first], owner[first]
