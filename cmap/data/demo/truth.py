"""The demo cube's known truth, for assessing maps of it: every pixel's class as a cmap class
map (`cube_truth.tif`) and the fields as parcels (`cube_parcels.geojson`, WGS 84)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import shapes
from rasterio.warp import transform_geom

from cmap.data.demo.calendars import ARABLE, CLASSES
from cmap.io.maps import NODATA, class_tags, colour_table, map_profile


def write_truth(out: Path, fields: np.ndarray, covers: np.ndarray, crs: str, transform) -> None:
    """fields [H, W] (field id, -1 on borders and outside), covers [F] (each field's land
    cover) -> `out/cube_truth.tif` and `out/cube_parcels.geojson`."""
    names = np.array([c if c in ARABLE else "other" for c in covers])
    ids = np.array([CLASSES.index(n) for n in names])
    truth = np.where(fields >= 0, ids[np.maximum(fields, 0)], NODATA).astype(np.uint8)
    grid = {"width": fields.shape[1], "height": fields.shape[0]}
    grid |= {"crs": crs, "transform": transform}
    with rasterio.open(out / "cube_truth.tif", "w", **map_profile(grid, 1, "uint8", NODATA)) as dst:
        dst.write(truth, 1)
        dst.write_colormap(1, colour_table(CLASSES))
        dst.update_tags(**class_tags(CLASSES), SOURCE="cmap demo generator: the true classes")
        dst.set_band_description(1, "class")
    features = [
        {
            "type": "Feature",
            "properties": {"parcel_id": f"field{int(f):03d}", "crop": str(names[int(f)])},
            "geometry": transform_geom(crs, "EPSG:4326", geometry, precision=8),
        }
        for geometry, f in shapes(fields.astype(np.int32), fields >= 0, 4, transform)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    (out / "cube_parcels.geojson").write_text(json.dumps(collection) + "\n")
