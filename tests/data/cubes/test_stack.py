"""Cubes read from NetCDF files and Zarr stores (`cmap.data.cubes.stack.Stack`): the same
windows as a GeoTIFF cube, bands of two resolutions on one grid, fill values, same-day
acquisitions, missing bands, quality masks, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from rasterio.transform import from_origin
from rasterio.windows import Window

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.module import CubeDataModule
from cmap.data.cubes.source import CubeOptions
from cmap.data.cubes.stack import Stack
from cmap.errors import CmapError, DataError
from tests.helpers import DEMO_CUBE, SHARED, cube_as_netcdf, needs_shared, write_netcdf

FINE = from_origin(500_000.0, 4_800_000.0, 10.0, 10.0)
COARSE = from_origin(500_000.0, 4_800_000.0, 20.0, 20.0)
S2 = {"_FillValue": 0, "scale_factor": 1e-4}


def test_a_netcdf_or_zarr_copy_of_a_cube_reads_the_same_windows(tmp_path):
    path = cube_as_netcdf(DEMO_CUBE, tmp_path / "cube.nc")
    xr.open_dataset(path, engine="h5netcdf", mask_and_scale=False).to_zarr(
        tmp_path / "c.zarr", zarr_format=2
    )
    cube = Cube(DEMO_CUBE, CubeOptions(scale=1e-4))
    for source in (path, tmp_path / "c.zarr"):
        stack = Stack(source)  # one file: every band, scale and fill value from attributes
        assert sorted(stack.bands) == sorted(cube.bands)
        stack = Stack(source, CubeOptions(cube.bands))
        assert np.array_equal(stack.dates, cube.dates)
        assert stack.transform == cube.transform and stack.crs == cube.crs
        for window in cube.windows(16):
            values, valid = stack.read(window)
            expected, expected_valid = cube.read(window)
            assert np.array_equal(valid, expected_valid) and valid.any() and not valid.all()
            assert np.allclose(
                values.transpose(0, 2, 3, 1)[valid], expected.transpose(0, 2, 3, 1)[valid]
            )


@pytest.fixture
def two_resolutions(tmp_path):
    """B04, B08 at 10 m (8 x 8) on 03-01, 03-11 twice and 03-21; B11 and SCL at 20 m (4 x 4,
    stored south to north, CRS only as an attribute) on 03-01 and 03-11."""
    fine = np.arange(4 * 64, dtype=np.uint16).reshape(4, 8, 8) + 1000
    fine[0, 0, 0] = 0  # fill value: pixel (0, 0) has no B04 on 03-01
    fine[1, 1, 1] = 0  # the first 03-11 acquisition misses pixel (1, 1), the second has it
    days = ["2021-03-01T10:00", "2021-03-11T10:00", "2021-03-11T10:30", "2021-03-21T10:00"]
    write_netcdf(
        tmp_path / "S2_10m.nc",
        {"B04": fine, "B08": fine + 2000},
        days,
        FINE,
        attrs={"B04": S2, "B08": S2},
    )
    coarse = (np.arange(2 * 16, dtype=np.uint16).reshape(2, 4, 4) + 1) * 100
    scl = np.full((2, 4, 4), 4, np.uint8)
    scl[0, 3, 3] = 9  # cloud (high probability) at the south-east 20 m pixel on 03-01
    path = write_netcdf(
        tmp_path / "S2_20m.nc", {"B11": coarse, "SCL": scl}, days[:2], COARSE, crs=None,
        flip=True, attrs={"B11": S2},
    )  # fmt: skip
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    ds.attrs["epsg"] = 32631
    ds.to_netcdf(path, engine="h5netcdf")
    return tmp_path, fine, coarse


def test_bands_of_two_resolutions_share_the_finest_grid_date_by_date(two_resolutions):
    folder, fine, coarse = two_resolutions
    stack = Stack(folder, CubeOptions(["B04", "B11", "B08"], quality_band="SCL"))
    assert stack.dates.astype(str).tolist() == ["2021-03-01", "2021-03-11", "2021-03-21"]
    assert (stack.width, stack.height, stack.transform) == (8, 8, FINE)
    values, valid = stack.read(Window(0, 0, 8, 8))
    assert values.shape == (3, 3, 8, 8)
    # each 20 m pixel covers 2 x 2 pixels of the 10 m grid (nearest)
    assert np.allclose(values[0, 1], np.repeat(np.repeat(coarse[0], 2, 0), 2, 1) * 1e-4)
    assert np.isclose(values[0, 0, 2, 3], fine[0, 2, 3] * 1e-4)
    assert np.isclose(values[0, 2, 2, 3], (fine[0, 2, 3] + 2000) * 1e-4)
    assert not valid[0, 0, 0]  # fill value
    assert valid[1, 1, 1] and np.isclose(values[1, 0, 1, 1], fine[2, 1, 1] * 1e-4)  # merged
    assert np.isclose(values[1, 0, 2, 2], fine[1, 2, 2] * 1e-4)  # first acquisition first
    assert not valid[2].any()  # no B11 on 03-21: a missing observation, not an error
    assert not valid[0, 6:, 6:].any() and valid[0, :6].sum() == 6 * 8 - 1  # SCL cloud
    # a window reads what the whole grid reads, with either resampling
    for resampling in ("nearest", "bilinear"):
        stack = Stack(
            folder, CubeOptions(["B04", "B11"], quality_band="SCL", resampling=resampling)
        )
        whole = stack.read(Window(0, 0, 8, 8))
        part = stack.read(Window(3, 1, 4, 5))
        assert np.allclose(part[0], whole[0][:, :, 1:6, 3:7]) and np.array_equal(
            part[1], whole[1][:, 1:6, 3:7]
        )
    # per-band scale, offset and nodata from the configuration win over the attributes
    stack = Stack(
        folder, CubeOptions(["B04", "B11"], nodata={"B04": 1001}, scale={"B11": 1.0}, offset=1.0)
    )
    values, valid = stack.read(Window(0, 0, 8, 8))
    assert not valid[0, 0, 1] and valid[0, 0, 0]  # 0 is a value now, 1001 the nodata
    assert np.isclose(values[0, 1, 0, 0], coarse[0, 0, 0] + 1.0)
    assert np.isclose(values[0, 0, 2, 3], fine[0, 2, 3] * 1e-4 + 1.0)


def test_the_season_of_year_picks_the_dates_of_long_files(two_resolutions):
    folder, _, _ = two_resolutions
    data = CubeDataModule(
        str(folder), ["B04", "B11"], year=2022, season_start="03-05", season_length=10
    )
    assert data.cube.dates.astype(str).tolist() == ["2021-03-11"]
    assert data.source_files()[1] == [folder / "S2_10m.nc", folder / "S2_20m.nc"]
    with pytest.raises(DataError, match="fit no single season"):
        CubeDataModule(str(folder), ["B04", "B11"], season_start="03-05", season_length=10)
    ranged = CubeDataModule(str(folder), ["B04"], time_range=["2021-03-10", "2021-03-30"])
    assert len(ranged.cube.dates) == 2


def test_stacks_that_cannot_be_read_are_named(two_resolutions, tmp_path):
    folder, fine, _ = two_resolutions
    with pytest.raises(DataError, match=r"name the bands to read .* B04, B08, B11, SCL"):
        Stack(folder)
    with pytest.raises(DataError, match=r"unknown band\(s\) \['B99'\]"):
        Stack(folder, CubeOptions(["B04", "B99"]))
    with pytest.raises(DataError, match="no date in time_range"):
        Stack(folder, CubeOptions(["B04"], time_range=["2022-01-01", "2022-12-31"]))
    other = tmp_path / "shifted"
    other.mkdir()
    write_netcdf(other / "a.nc", {"B04": fine}, ["2021-03-01"] * 4, FINE)
    write_netcdf(
        other / "b.nc",
        {"B11": fine[:, :4, :4]},
        ["2021-03-01"] * 4,
        from_origin(500_100.0, 4_800_000.0, 20.0, 20.0),
    )
    with pytest.raises(DataError, match=r"b.nc: .*cannot be aligned"):
        Stack(other, CubeOptions(["B04", "B11"]))
    write_netcdf(other / "c.nc", {"B12": fine}, ["2021-03-01"] * 4, FINE, crs=None)
    with pytest.raises(DataError, match=r"c.nc: band B12 has no CRS"):
        Stack(other / "c.nc")
    (other / "d.nc").write_text("not a NetCDF file")
    with pytest.raises(DataError, match=r"d.nc: cannot be read as NetCDF-4"):
        Stack(other / "d.nc")
    with pytest.raises(CmapError, match="is a GeoTIFF folder, which takes no time_range"):
        CubeDataModule(str(DEMO_CUBE), time_range=["2021-01-01", "2021-02-01"])
    with pytest.raises(CmapError, match="per-band nodata or scale are read from NetCDF"):
        CubeDataModule(str(DEMO_CUBE), scale={"B04": 1e-4})


@needs_shared
def test_a_real_flanders_patch_reads_its_20m_bands_and_cloud_mask_on_the_10m_grid():
    patch = SHARED / "worldcereal_flanders" / "00002806639B424A"
    stack = Stack(
        patch,
        CubeOptions(
            ["B04", "B08", "B11"], quality_band="SCL", time_range=["2018-03-01", "2018-09-30"]
        ),
    )
    assert (stack.width, stack.height, stack.crs.to_epsg()) == (64, 64, 32631)
    values, valid = stack.read(Window(0, 0, 64, 64))
    with xr.open_dataset(
        next(patch.glob("S2_L2A_20m_*.nc")), engine="h5netcdf", mask_and_scale=False
    ) as ds:
        days = ds.timestamp.values.astype("datetime64[D]")
        at = np.searchsorted(days, stack.dates)
        scl = ds.SCL.values[at].repeat(2, 1).repeat(2, 2)
        b11 = ds.B11.values[at].repeat(2, 1).repeat(2, 2)
    assert np.array_equal(valid & (b11 > 0), np.isin(scl, (4, 5, 6, 7)) & valid)
    assert not valid[~np.isin(scl, (4, 5, 6, 7))].any()  # clouds and shadows masked
    assert 0.2 < valid.mean() < 0.9  # real clouds: some dates, not all
    assert np.allclose(values[:, 2][valid], b11[valid] * 1e-4)
    reflectance = values.transpose(0, 2, 3, 1)[valid]
    assert 0 < reflectance.min() and reflectance.max() < 2  # scaled, no raw 0 fill as a value


def test_a_calendar_year_season_is_named_by_the_year_it_starts_in(two_resolutions):
    folder, _, _ = two_resolutions
    data = CubeDataModule(
        str(folder), ["B04"], season_start="01-01", season_length=365, season_year="start"
    )
    assert data.year == 2021 and str(data.first_day) == "2021-01-01"
    assert data.map_tags()["SEASON_DATES"] == "2021-01-01/2021-12-31"
    ended = CubeDataModule(str(folder), ["B04"], season_start="01-01", season_length=365)
    assert ended.year == 2022 and str(ended.first_day) == "2021-01-01"  # the default naming
    with pytest.raises(DataError, match="season_year must be 'end' or 'start', got 'begin'"):
        CubeDataModule(str(folder), ["B04"], season_year="begin")


def test_dataloader_workers_reopen_the_files_and_give_the_same_batches(two_resolutions):
    """Workers get the stack pickled without its open files and reopen them."""
    folder, _, _ = two_resolutions
    batches = {}
    for workers in (0, 2):
        data = CubeDataModule(
            str(folder), ["B04", "B11"], quality_band="SCL", window_size=16, num_workers=workers
        )
        data.cube.read(Window(0, 0, 8, 8))  # files opened in this process first
        data.setup("predict")
        batches[workers] = list(data.predict_dataloader())
    assert len(batches[0]) == len(batches[2]) == 1
    for key in ("ts", "positions", "mask", "pixel"):
        assert np.array_equal(batches[0][0][key].numpy(), batches[2][0][key].numpy())
