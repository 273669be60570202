"""Cubes from a local static STAC catalogue (odc-stac): the same windows as the GeoTIFF cube
its assets were cut from, asset-to-band mapping, date range, and clear errors for missing
assets and items."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.windows import Window

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.module import CubeDataModule
from cmap.data.cubes.source import CubeOptions
from cmap.errors import CmapError, DataError
from tests.helpers import DEMO_CUBE, stac_catalogue

BANDS = ["B04", "B08", "B11"]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stac")
    return stac_catalogue(DEMO_CUBE, folder, BANDS, assets={"B04": "red", "B08": "nir"})


def test_a_stac_catalogue_reads_the_windows_of_its_cube(catalogue):
    data = CubeDataModule(
        str(catalogue), BANDS, scale=1e-4, stac_assets={"B04": "red", "B08": "nir"}, window_size=16
    )
    cube = Cube(DEMO_CUBE, CubeOptions(BANDS, scale=1e-4))
    assert np.array_equal(data.cube.dates, cube.dates) and data.year == 2021
    assert data.cube.transform == cube.transform and data.cube.crs == cube.crs
    for window in (Window(0, 0, 40, 40), Window(7, 13, 16, 9)):
        values, valid = data.cube.read(window)
        expected, expected_valid = cube.read(window)
        assert np.array_equal(valid, expected_valid)
        inside = valid[:, None].repeat(len(BANDS), 1)
        assert np.allclose(values[inside], expected[inside])
    assert data.source_files()[1] == [catalogue]
    data = CubeDataModule(
        str(catalogue), ["B11"], scale=1e-4, time_range=["2021-03-01", "2021-03-31"]
    )
    assert all(str(d).startswith("2021-03") for d in data.cube.dates) and len(data.cube.dates) > 2


def test_stac_catalogues_that_cannot_be_read_are_named(catalogue, tmp_path):
    with pytest.raises(DataError, match=r"item 2020-11-04 has no asset 'B04' \(band B04\)"):
        CubeDataModule(str(catalogue), ["B04"])
    item = next(catalogue.parent.glob("*/*.json"))
    asset = json.loads(item.read_text())["assets"]["nir"]["href"]
    moved = tmp_path / "moved.tif"
    target = (item.parent / asset).resolve()
    target.rename(moved)
    try:
        with pytest.raises(DataError, match=r"asset .nir. of item .* \(band B08\) not found"):
            CubeDataModule(str(catalogue), ["B08"], stac_assets={"B08": "nir"})
    finally:
        moved.rename(target)
    with pytest.raises(DataError, match="holds no item in the bounding box and time range"):
        CubeDataModule(str(catalogue), ["B11"], bbox=[10.0, 10.0, 11.0, 11.0])
    with pytest.raises(CmapError, match="is a GeoTIFF folder, which takes no crs, resolution"):
        CubeDataModule(str(DEMO_CUBE), crs="EPSG:32631", resolution=20)


def test_an_asset_that_cannot_be_read_is_named_by_its_url(tmp_path):
    catalogue = stac_catalogue(DEMO_CUBE, tmp_path, ["B04"])
    item = sorted(catalogue.parent.glob("*/*.json"))[3]
    content = json.loads(item.read_text())
    content["assets"]["B04"]["href"] = "http://127.0.0.1:9/S2/B04.tif"  # nothing listens
    item.write_text(json.dumps(content))
    data = CubeDataModule(str(catalogue), ["B04"], window_size=16)
    with pytest.raises(DataError, match=r"^http://127.0.0.1:9/S2/B04.tif: band B04 cannot be read"):
        data.cube.read(data.cube.windows(16)[0])
