"""Daily weather for thermal positions on cubes: gridded (AgERA5-like NetCDF, kelvin) or one
station (parquet); the growing degree days a cube batch carries are the ones the samples cut
from it carry, so a model sees the same positions in training and in the map."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import torch
import xarray as xr
from rasterio.transform import from_origin

from cmap.data.cubes.module import CubeDataModule
from cmap.data.series.module import SITSDataModule
from cmap.data.weather import Weather
from cmap.errors import CmapError, DataError
from cmap.main import main
from tests.helpers import SHARED, needs_shared, write_netcdf

GRID = from_origin(500_000.0, 4_800_000.0, 10.0, 10.0)
DAYS = np.arange(np.datetime64("2020-11-01"), np.datetime64("2021-12-01"))


def write_weather(path, kelvin: np.ndarray, days=DAYS, cell=60.0) -> None:
    """Daily temperature_mean [D, 2, 2] on 2 x 2 cells of `cell` metres from the grid's
    corner, in kelvin, with the -9999 fill value of AgERA5."""
    xs = 500_000.0 + cell * (np.arange(2) + 0.5)
    ys = 4_800_000.0 - cell * (np.arange(2) + 0.5)
    attrs = {"units": "K", "_FillValue": -9999.0, "grid_mapping": "spatial_ref"}
    ds = xr.Dataset(
        {"temperature_mean": (("timestamp", "y", "x"), kelvin.astype(np.float32), attrs)},
        {"timestamp": days.astype("datetime64[ns]"), "y": ys, "x": xs},
    )
    wkt = rasterio.crs.CRS.from_epsg(32631).to_wkt()
    ds.coords["spatial_ref"] = xr.Variable((), 0, {"crs_wkt": wkt})
    ds.to_netcdf(path, engine="h5netcdf")


@pytest.fixture
def cube_and_weather(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.integers(100, 5000, (4, 12, 12)).astype(np.uint16)
    dates = ["2021-02-10", "2021-04-10", "2021-06-10", "2021-08-10"]
    attrs = {"_FillValue": 0, "scale_factor": 1e-4}
    write_netcdf(tmp_path / "S2.nc", {"B04": values}, dates, GRID, attrs={"B04": attrs})
    # cell (row, col) is 5 degC warmer per column and 1 degC per row, every day
    celsius = 2.0 + 5.0 * np.arange(2)[None, None, :] + np.arange(2)[None, :, None]
    kelvin = np.broadcast_to(celsius, (len(DAYS), 2, 2)) + 273.15
    kelvin = kelvin.copy()
    kelvin[10:13, 0, 0] = -9999.0  # three missing days, interpolated
    write_weather(tmp_path / "agera5.nc", kelvin)
    return tmp_path


def test_cube_batches_carry_growing_degree_days_of_each_pixels_cell(cube_and_weather):
    root = cube_and_weather
    data = CubeDataModule(
        str(root / "S2.nc"), positions="gdd", weather=str(root / "agera5.nc"), window_size=16
    )
    data.setup("predict")
    batch = next(iter(data.predict_dataloader()))
    assert batch["positions"].dtype == torch.float32
    first = np.datetime64("2020-11-01")
    days = (
        np.array(["2021-02-10", "2021-04-10", "2021-06-10", "2021-08-10"], "datetime64[D]") - first
    ).astype(int) + 1
    for pixel, degrees in ((0, 2.0), (11, 7.0), (12 * 11, 3.0), (12 * 12 - 1, 8.0)):
        # pixel 0 lies in cell (0, 0), 11 (col 11, x 115 m) in cell (0, 1), row 11 in row 1
        at = int(np.flatnonzero(batch["pixel"].numpy() == pixel)[0])
        assert np.allclose(batch["positions"][at].numpy(), degrees * days, rtol=1e-5)
    assert batch["days"][0].tolist() == (days - 1).tolist()


def test_samples_cut_with_weather_see_the_positions_the_map_sees(cube_and_weather):
    root = cube_and_weather
    x = [500_005.0, 500_115.0, 500_055.0, 500_065.0]  # cells (0, 0), (1, 1), (0, 0), (0, 1)
    y = [4_799_995.0, 4_799_885.0, 4_799_995.0, 4_799_955.0]
    table = pa.table({"x": x, "y": y, "label": ["a", "b", "a", "b"]})
    pq.write_table(table, root / "points.parquet")
    main(
        [
            *("samples", str(root / "S2.nc"), str(root / "s")),
            *("--points", str(root / "points.parquet"), "--weather", str(root / "agera5.nc")),
            *("--split", "[1, 1, 0]"),
        ]
    )
    daily = pq.read_table(root / "s" / "train" / "temperatures.pq").to_pydict()
    assert daily["date"][0].isoformat() == "2020-11-01" and len(daily["date"]) == 2 * 283
    data = SITSDataModule(str(root / "s"), positions="gdd", batch_size=2)
    data.setup("fit")
    cube = CubeDataModule(
        str(root / "S2.nc"), positions="gdd", weather=str(root / "agera5.nc"), window_size=16
    )
    cube.setup("predict")
    pixels = next(iter(cube.predict_dataloader()))
    for loader in (data.train_dataloader(), data.val_dataloader()):
        batch = next(iter(loader))
        for k in range(2):  # the cube pixel with this sample's values: the same positions
            same = (pixels["ts"][:, 0, 0] == batch["ts"][k, 0, 0]).nonzero()[0, 0]
            mask = batch["mask"][k]
            assert torch.equal(mask, pixels["mask"][same])
            assert torch.allclose(batch["positions"][k][mask], pixels["positions"][same][mask])


def test_weather_that_does_not_fit_is_named(cube_and_weather, tmp_path):
    root = cube_and_weather
    short = tmp_path / "short.nc"
    write_weather(short, np.full((100, 2, 2), 280.0), DAYS[:100])
    with pytest.raises(
        DataError,
        match=r"short.nc: holds daily temperatures from 2020-11-01 to 2021-02-08, but the "
        r"season needs 2020-11-01 to 2021-08-10",
    ):
        CubeDataModule(str(root / "S2.nc"), positions="gdd", weather=str(short))
    small = tmp_path / "small.nc"
    write_weather(small, np.full((len(DAYS), 2, 2), 280.0), cell=20.0)
    data = CubeDataModule(str(root / "S2.nc"), positions="gdd", weather=str(small), window_size=16)
    data.setup("predict")
    with pytest.raises(DataError, match=r"small.nc: does not cover 128 pixel\(s\) of the cube"):
        next(iter(data.predict_dataloader()))
    gaps = np.full((len(DAYS), 2, 2), 280.0)
    gaps[50:60] = -9999.0
    write_weather(tmp_path / "gaps.nc", gaps)
    with pytest.raises(
        DataError, match=r"gaps.nc: temperature_mean misses 10 days after 2020-12-20"
    ):
        Weather(tmp_path / "gaps.nc")
    with pytest.raises(DataError, match="has no variable tmean; it holds temperature_mean"):
        Weather(root / "agera5.nc", "tmean")
    with pytest.raises(CmapError, match="positions: gdd needs weather"):
        CubeDataModule(str(root / "S2.nc"), positions="gdd")


def test_a_station_table_serves_every_pixel(cube_and_weather, tmp_path):
    pq.write_table(
        pa.table({"date": DAYS, "tmean": np.full(len(DAYS), 4.0)}), tmp_path / "station.parquet"
    )
    weather = Weather(tmp_path / "station.parquet", "tmean")
    gdd = weather.gdd_at(
        np.datetime64("2020-11-01"), np.array(["2020-11-10"], "datetime64[D]"), 1.0
    )
    assert gdd.tolist() == [[30.0]]  # 10 days of 4 - 1 degC


@needs_shared
def test_agera5_of_a_flanders_patch_gives_a_season_of_heat():
    patch = SHARED / "worldcereal_flanders" / "00002806639B424A"
    weather = Weather(next(patch.glob("AgERA5_*.nc")))
    assert -10 < weather.values.min() < 0 and 20 < weather.values.max() < 30  # degC, not K
    gdd = weather.gdd_at(
        np.datetime64("2017-11-01"), np.array(["2018-11-30"], "datetime64[D]"), 0.0
    )
    assert 3500 < gdd[0, 0] < 5000


def test_a_thermal_model_refuses_calendar_days():
    """A model trained on growing degree days mapping a cube read with days would give a
    wrong map without a word."""
    from cmap.models import ThermalPositionalEncoding

    encoding = ThermalPositionalEncoding(8)
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert encoding(torch.tensor([[10.0, 200.0, 900.0]]), mask).shape == (1, 3, 8)
    with pytest.raises(CmapError, match="takes growing degree days but got whole days"):
        encoding(torch.tensor([[10, 20, 90]]), mask)
