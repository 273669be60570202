"""Reading a national parcel register for one tile: the whole file against only what meets
the tile (`read_frame(within=...)`: pyogrio's bbox filter, through the spatial index).

    python benchmarks/vector_read.py [--side 400] [--tile-km 11] [--formats gpkg fgb geojson]

Writes a register of side x side square parcels (400 m wide, one every 500 m: 160 000
parcels over 200 km for the default) in each format, then, each in a fresh process, reads
it whole and for one tile of `--tile-km` km (the parcels whose box meets it, as `cmap
parcels`, `cmap samples --vector` and `cmap assess` now do), and runs `cmap parcels` of a
probabilities map covering that tile. Reports seconds, parcels read and peak resident memory.
Writes benchmarks/results/vector_read.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from _common import RESULTS, machine, peak_rss_mb, write_results
from rasterio.transform import from_origin

ORIGIN = (400_000.0, 4_700_000.0)  # UTM 31N, metres
CRS = "EPSG:32631"


def register(path: Path, side: int) -> None:
    """side x side square parcels, 400 m wide, every 500 m, with an id and a crop."""
    import geopandas
    import shapely

    x, y = (v.ravel() * 500.0 for v in np.meshgrid(np.arange(side), np.arange(side)))
    x, y = x + ORIGIN[0], y + ORIGIN[1]
    geopandas.GeoDataFrame(
        {"parcel": np.arange(side * side), "crop": np.where((x + y) % 1000 == 0, "a", "b")},
        geometry=shapely.box(x, y, x + 400, y + 400),
        crs=CRS,
    ).to_file(path, engine="pyogrio")


def tile_bounds(side: int, km: float) -> tuple[float, float, float, float]:
    """A km x km tile in the middle of the register."""
    left = ORIGIN[0] + side * 250 - km * 500
    bottom = ORIGIN[1] + side * 250 - km * 500
    return left, bottom, left + km * 1000, bottom + km * 1000


def probabilities(path: Path, side: int, km: float) -> None:
    """A 2-class uint8 probabilities map of the tile at 10 m (as `cmap predict` writes)."""
    from cmap.io.maps import class_tags, map_profile

    left, bottom, right, top = tile_bounds(side, km)
    size = int(round((right - left) / 10))
    grid = {"width": size, "height": size, "crs": CRS, "transform": from_origin(left, top, 10, 10)}
    with rasterio.open(path, "w", **map_profile(grid, 2, "uint8", None)) as dst:
        p = np.full((size, size), 180, np.uint8)
        dst.write(np.stack([p, 255 - p]))
        dst.update_tags(**class_tags(["a", "b"]))
        dst.descriptions = ("a", "b")


def child(path: Path, mode: str, side: int, km: float) -> dict:
    """One measurement in this (fresh) process."""
    from cmap.data.labels.vectors import read_frame
    from cmap.products.parcels import parcel_map

    start = time.perf_counter()
    if mode == "imports":  # what importing geopandas and cmap costs
        import geopandas  # noqa: F401

        read = 0
    elif mode == "parcels":
        probs = path.with_name("tile_probabilities.tif")
        output = path.with_name(f"{path.stem}_parcels.gpkg")
        counts = parcel_map(probs, path, output, overwrite=True)
        read = counts["with a class"]
    else:
        within = [(tile_bounds(side, km), CRS)] if mode == "tile" else None
        frame, _ = read_frame(path, None, None, within=within)
        read = len(frame)
    return {"seconds": round(time.perf_counter() - start, 2), "parcels": read,
            "peak_rss_mb": round(peak_rss_mb())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=400, help="parcels a side")
    parser.add_argument("--tile-km", type=float, default=11.0)
    parser.add_argument("--formats", nargs="+", default=["gpkg", "fgb", "geojson"])
    parser.add_argument("--out", type=Path, default=RESULTS / "vector_read.json")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # path, mode
    args = parser.parse_args()
    if args.child:
        path, mode = args.child
        print(json.dumps(child(Path(path), mode, args.side, args.tile_km)))
        return
    result: dict = {"parcels": args.side**2, "tile_km": args.tile_km, "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        probabilities(Path(tmp) / "tile_probabilities.tif", args.side, args.tile_km)
        sizes = ["--side", str(args.side), "--tile-km", str(args.tile_km)]

        def measure(path: Path, mode: str) -> dict:
            run = subprocess.run(
                [sys.executable, __file__, "--child", str(path), mode, *sizes],
                capture_output=True, text=True,
            )  # fmt: skip
            if run.returncode:
                sys.exit(f"{path.name} {mode}: {run.stderr[-2000:]}")
            return json.loads(run.stdout.strip().splitlines()[-1])

        result["imports_peak_rss_mb"] = measure(Path(tmp), "imports")["peak_rss_mb"]
        for fmt in args.formats:
            path = Path(tmp) / f"register.{fmt}"
            register(path, args.side)
            row = {"file_mb": round(path.stat().st_size / 1e6, 1)}
            for mode in ("whole", "tile", "parcels"):
                row[mode] = measure(path, mode)
            result["formats"][fmt] = row
            print(fmt, row, flush=True)
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
