"""A local static STAC catalogue of a Flanders patch (what a STAC API would list for it): one
item per Sentinel-2 acquisition, one GeoTIFF asset per band at the band's own resolution
(10 m: B02 B03 B04 B08; 20 m: B05 B06 B07 B8A B11 B12 SCL), stored values with fill value 0,
and the projection extension on every asset.

    python benchmarks/flanders_stac.py ../shared/data/worldcereal_flanders/0000280849BAC91C stac

writes stac/catalog.json (and the item folders and GeoTIFFs beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping

from cmap.data.layers import grid_of, open_dataset, time_bands


def write_catalogue(patch: Path, out: Path) -> Path:
    """Write the catalogue of `patch`'s Sentinel-2 files under `out`; returns catalog.json."""
    assets: dict[np.datetime64, dict] = {}
    for path in sorted(patch.glob("S2_L2A_*.nc")):
        ds = open_dataset(path)
        for band, time in time_bands(ds).items():
            grid = grid_of(ds, band, str(path))
            values = ds[band].transpose(time, grid.y, grid.x).values
            if grid.flip_y:
                values = values[:, ::-1]
            for t, stamp in enumerate(ds[time].values):
                tif = out / "assets" / f"{str(stamp)[:19].replace(':', '')}_{band}.tif"
                tif.parent.mkdir(parents=True, exist_ok=True)
                profile = {
                    "driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1,
                    "dtype": values.dtype.name, "crs": grid.crs, "transform": grid.transform,
                    "nodata": 0,
                }  # fmt: skip
                with rasterio.open(tif, "w", **profile) as dst:
                    dst.write(values[t][None])
                assets.setdefault(stamp, {})[band] = (tif, grid)
    catalogue = pystac.Catalog(id=patch.name, description=f"Sentinel-2 L2A of {patch}")
    for stamp, bands in sorted(assets.items()):
        tif, grid = next(iter(bands.values()))
        left, top = grid.transform * (0, 0)
        right, bottom = grid.transform * (grid.width, grid.height)
        lonlat = transform_bounds(grid.crs, "EPSG:4326", left, bottom, right, top)
        when = dt.datetime.fromisoformat(str(stamp)[:19])
        item = pystac.Item(f"S2_{str(stamp)[:19]}", mapping(box(*lonlat)), list(lonlat), when, {})
        ProjectionExtension.add_to(item)
        for band, (tif, grid) in bands.items():
            asset = pystac.Asset(str(tif.resolve()), media_type=pystac.MediaType.GEOTIFF)
            item.add_asset(band, asset)
            projection = ProjectionExtension.ext(asset)
            projection.epsg = grid.crs.to_epsg()
            projection.transform = list(grid.transform)[:6]
            projection.shape = [grid.height, grid.width]
        catalogue.add_item(item)
    catalogue.normalize_and_save(str(out), pystac.CatalogType.SELF_CONTAINED)
    return out / "catalog.json"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("patch", type=Path, help="a patch folder of worldcereal_flanders")
    parser.add_argument("out", type=Path, help="folder for the catalogue")
    args = parser.parse_args()
    print(f"wrote {write_catalogue(args.patch, args.out)}")
