"""`cmap predict --tiles catalog.json --grid SIZE|mgrs`: a STAC catalogue cut into the cells of
a regular grid or its MGRS tiles, each mapped as a tile; a grid that meets no data is one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from cmap.data.demo.tiles import write_tiles
from cmap.errors import ConfigError, DataError
from cmap.tiles.grid import grid_tiles, mgrs, regular
from tests.helpers import DEMO_CUBE, PREDICT, stac_catalogue
from tests.tiles.test_tiles_samples import mosaic, tables, write_points

pystac = pytest.importorskip("pystac")


def item(name, west, south, east, north, epsg=32631, when="2021-05-01", **props):
    """An item on a 10 m grid of EPSG `epsg` covering west..east, south..north there."""
    from rasterio.warp import transform_bounds

    lonlat = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", west, south, east, north)
    props |= {
        "proj:epsg": epsg,
        "proj:transform": [10.0, 0.0, west, 0.0, -10.0, north],
        "proj:shape": [round((north - south) / 10), round((east - west) / 10)],
    }
    geometry = {"type": "Point", "coordinates": list(lonlat[:2])}
    return pystac.Item(name, geometry, list(lonlat), dt.datetime.fromisoformat(when), props)


def test_a_regular_grid_gives_the_cells_that_meet_an_item_edges_at_multiples_of_the_size():
    items = [
        item("a", 370000, 4829200, 370800, 4830000),
        item("b", 370800, 4829600, 371000, 4830000),
    ]
    cells = regular(Path("c.json"), items, 400.0, "EPSG:32631", 10.0)
    assert list(cells) == [
        "E370000_N4829600",
        "E370400_N4829600",
        "E370800_N4829600",
        "E370000_N4829200",
        "E370400_N4829200",
    ]  # north first, then west to east
    assert cells["E370800_N4829600"] == {"bounds": [370800.0, 4829600.0, 371200.0, 4830000.0]}
    with pytest.raises(
        ConfigError, match="--grid 405: give a positive multiple of the resolution 10"
    ):
        regular(Path("c.json"), items, 405.0, "EPSG:32631", 10.0)
    with pytest.raises(
        ConfigError, match="a regular grid needs the output grid: --data.init_args.crs"
    ):
        regular(Path("c.json"), items, 400.0, None, None)


def test_mgrs_tiles_keep_their_own_utm_zone_and_pixel_grid():
    ufs = {"s2:mgrs_tile": "31UFS"}
    ula = {"mgrs:utm_zone": 32, "mgrs:latitude_band": "U", "mgrs:grid_square": "LA"}
    items = [
        item("a1", 600000, 5090200, 709800, 5200000, 32631, **ufs),
        item("a2", 600000, 5090200, 709800, 5200000, 32631, "2021-05-06", **ufs),
        item("b", 300000, 5090200, 409800, 5200000, 32632, **ula),
    ]
    tiles = mgrs(Path("c.json"), items, None)
    assert list(tiles) == ["T31UFS", "T32ULA"]
    assert tiles["T31UFS"] == {
        "crs": "EPSG:32631",
        "resolution": 10.0,
        "bounds": [600000.0, 5090200.0, 709800.0, 5200000.0],
    }
    assert tiles["T32ULA"]["crs"] == "EPSG:32632"
    with pytest.raises(DataError, match=r"item c names no MGRS tile \(s2:mgrs_tile, or the"):
        mgrs(Path("c.json"), [item("c", 0, 0, 100, 100)], None)


def test_a_grid_that_meets_no_data_is_one_line(tmp_path):
    catalogue = pystac.Catalog(id="c", description="two items")
    for it in (
        item("a", 370000, 4829200, 370800, 4830000),
        item("b", 370000, 4829200, 370800, 4830000, when="2021-06-01"),
    ):
        catalogue.add_item(it)
    catalogue.normalize_and_save(str(tmp_path / "c"), pystac.CatalogType.SELF_CONTAINED)
    path = tmp_path / "c" / "catalog.json"
    spec = {"crs": "EPSG:32631", "resolution": 10.0}
    assert len(grid_tiles(path, "400", spec)) == 4
    far = spec | {"bbox": [10.0, 40.0, 10.1, 40.1]}
    with pytest.raises(
        DataError, match="the grid meets no data: none of its 2 items lies in the bbox"
    ):
        grid_tiles(path, "400", far)
    late = spec | {"time_range": ["2022-01-01", "2022-12-31"]}
    with pytest.raises(DataError, match="the grid meets no data"):
        grid_tiles(path, "400", late)
    with pytest.raises(ConfigError, match="--grid tiles a STAC catalogue"):
        grid_tiles(tmp_path / "stack.nc", "400", spec)
    with pytest.raises(ConfigError, match="--grid ten: give a cell size"):
        grid_tiles(path, "ten", spec)


def catalogue_of_tiles(tmp_path: Path) -> tuple[Path, dict]:
    """The 4 demo tiles (12 of their dates: quicker tests) and a STAC catalogue of their
    mosaic; the catalogue's data options."""
    write_tiles(DEMO_CUBE, tmp_path / "tiles", grid=2)
    keep = {p.name for p in sorted((tmp_path / "tiles" / "T00").glob("*.tif"))[:12]}
    for path in (tmp_path / "tiles").glob("T*/*.tif"):
        if path.name not in keep:
            path.unlink()
    mosaic(tmp_path / "tiles", tmp_path / "whole")
    meta = yaml.safe_load((DEMO_CUBE.parent / "meta.yaml").read_text())
    catalogue = stac_catalogue(tmp_path / "whole", tmp_path / "stac", meta["bands"])
    options = {"crs": "EPSG:32631", "resolution": 10, "bands": meta["bands"], "scale": 0.0001}
    return catalogue, options | {"nodata": 0}


@pytest.mark.slow
def test_samples_from_the_cells_of_a_catalogue_are_those_of_its_tiles(tmp_path, run_cmap):
    catalogue, options = catalogue_of_tiles(tmp_path)
    (tmp_path / "cube.yaml").write_text(yaml.safe_dump(options))
    write_points(tmp_path / "points.csv", from_origin(370000, 4830000, 10, 10), 80, 300)
    points = ["--points", "points.csv", "--tiles", "true", "--workers", "2"]
    grid = ["--grid", "400", "--data", "cube.yaml"]
    cells = run_cmap("samples", catalogue, "s_grid", *points, *grid, cwd=tmp_path)
    assert cells.returncode == 0, cells.stderr[-3000:]
    assert "E370400_N4829200: train" in cells.stderr
    tiles = run_cmap("samples", "tiles/T*", "s_tiles", *points, cwd=tmp_path)
    assert tiles.returncode == 0, tiles.stderr[-3000:]
    mine, theirs = tables(tmp_path / "s_grid"), tables(tmp_path / "s_tiles")
    for key, table in theirs.items():
        assert mine[key].equals(table), key
    meta = yaml.safe_load((tmp_path / "s_grid" / "meta.yaml").read_text())
    assert meta["source_cube"][0] == f"{catalogue}#E370000_N4829600"


@pytest.mark.slow
def test_the_cells_of_a_catalogue_are_mapped_as_its_tiles_are(checkpoint, tmp_path, run_cmap):
    catalogue, options = catalogue_of_tiles(tmp_path)
    data = []
    for key, value in options.items():
        data += [f"--data.init_args.{key}", str(value)]
    args = ["predict", "--config", PREDICT, "--ckpt_path", checkpoint, "--tiles", catalogue]
    args += ["--grid", "400", "--output", tmp_path / "maps", "--workers", "2", *data]
    done = run_cmap(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cmap: 4 tiles: 0 mapped before, 4 to map, 0 refused" in done.stderr
    serial = ["predict", "--config", PREDICT, "--ckpt_path", checkpoint]
    serial += ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    (tmp_path / "serial").mkdir()
    names = {"T00": "E370000_N4829600", "T11": "E370400_N4829200"}  # two corners of four
    for tile, cell in names.items():
        one = ["--data.init_args.cube", tmp_path / "tiles" / tile]
        one += ["--output", tmp_path / "serial" / f"{tile}.tif"]
        alone = run_cmap(*serial, *one, cwd=tmp_path)
        assert alone.returncode == 0, alone.stderr[-2000:]
        for suffix in (".tif", "_probabilities.tif"):
            with rasterio.open(tmp_path / "maps" / f"{cell}{suffix}") as a:
                with rasterio.open(tmp_path / "serial" / f"{tile}{suffix}") as b:
                    assert a.transform == b.transform and a.crs == b.crs
                    assert np.array_equal(a.read(), b.read()), (tile, suffix)
    manifest = yaml.safe_load((tmp_path / "maps" / "manifest.json").read_text())["tiles"]
    assert manifest["E370400_N4829200"]["cell"] == {
        "bounds": [370400.0, 4829200.0, 370800.0, 4829600.0]
    }
    again = run_cmap(*args, cwd=tmp_path)
    assert again.returncode == 0 and "4 mapped before, 0 to map" in again.stderr
    with rasterio.open(tmp_path / "maps" / "mosaic.vrt") as src:
        assert (src.width, src.height) == (80, 80)
