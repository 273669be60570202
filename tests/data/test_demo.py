"""The demo data generator: deterministic, and realistic where models rely on it."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio

from cmap.data import SITSDataModule
from cmap.data.demo import Region, generate
from cmap.data.demo.calendars import BANDS
from cmap.errors import ConfigError
from cmap.main import main
from tests.helpers import REPO


def monthly_ndvi(root, split="train"):
    """Mean NDVI per class and calendar month, and valid dates per month, over one split."""
    dm = SITSDataModule(str(root))
    table = dm.load_split(split)
    rows = np.concatenate([np.arange(s, s + n) for s, n in zip(table.starts, table.lengths)])
    labels = np.repeat(table.labels, table.lengths)
    seasons = np.repeat(table.seasons, table.lengths)
    red, nir = table.values[rows, BANDS.index("B04")], table.values[rows, BANDS.index("B08")]
    ndvi = (nir - red) / (nir + red)
    month = table.dates[rows].astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12 + 1
    return dm, ndvi, labels, seasons, month


def peak_month(ndvi, month, select):
    means = [ndvi[select & (month == m)].mean() for m in range(1, 13)]
    return int(np.nanargmax(means)) + 1


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    generate(tmp_path / "a", points=20, seasons=[2021], cube_size=0, seed=1)
    generate(tmp_path / "b", points=20, seasons=[2021], cube_size=0, seed=1)
    generate(tmp_path / "c", points=20, seasons=[2021], cube_size=0, seed=2)
    a, b, c = (pq.read_table(tmp_path / x / "train" / "features.pq") for x in "abc")
    assert a.equals(b)
    assert not a.equals(c)


def test_phenology_peaks_in_the_right_months():
    dm, ndvi, labels, seasons, month = monthly_ndvi(REPO / "data" / "demo")
    normal = seasons != 2020  # 2020 is the warm season of the demo
    k = {name: i for i, name in enumerate(dm.classes)}
    for crop in ("ble_tendre", "ble_dur", "orge", "colza"):
        assert peak_month(ndvi, month, normal & (labels == k[crop])) in (4, 5), crop
    for crop in ("mais", "tournesol"):
        assert peak_month(ndvi, month, normal & (labels == k[crop])) in (7, 8), crop
    # Winter cereals are bare in autumn; maize is bare in spring.
    wheat, maize = labels == k["ble_tendre"], labels == k["mais"]
    assert ndvi[wheat & (month == 11)].mean() < 0.35 < ndvi[wheat & (month == 5)].mean()
    assert ndvi[maize & (month == 4)].mean() < 0.35 < ndvi[maize & (month == 8)].mean()


def test_warm_season_shifts_phenology_earlier():
    dm, ndvi, labels, seasons, month = monthly_ndvi(REPO / "data" / "demo")
    maize = labels == dm.classes.index("mais")
    assert peak_month(ndvi, month, maize & (seasons == 2020)) < peak_month(
        ndvi, month, maize & (seasons == 2021)
    )


def test_clouds_leave_fewer_dates_in_winter_and_some_bright_outliers():
    dm, ndvi, labels, seasons, month = monthly_ndvi(REPO / "data" / "demo")
    per_month = np.bincount(month, minlength=13)[1:]
    winter, summer = per_month[[11, 0, 1]].mean(), per_month[[5, 6, 7]].mean()
    assert winter < 0.6 * summer
    table = dm.load_split("train")
    assert table.lengths.max() < 79  # a 5-day revisit over 395 days has 79 dates
    blue = table.values[:, BANDS.index("B02")]
    assert 0 < (blue > 0.2).mean() < 0.05  # a few undetected bright clouds


def test_class_imbalance_like_the_seed():
    dm = SITSDataModule(str(REPO / "data" / "demo"))
    counts = dm.load_split("train").class_counts(dm.classes)
    total = sum(counts.values())
    assert counts["ble_dur"] / total < 0.05
    assert counts["ble_tendre"] > 5 * counts["ble_dur"]
    assert all(n > 0 for n in counts.values())


def test_cube_is_a_valid_geotiff_time_series(synthetic_root):
    files = sorted((synthetic_root / "cube").glob("*.tif"))
    assert len(files) > 20
    profiles = []
    for path in files[:5]:
        with rasterio.open(path) as src:
            profiles.append((src.crs.to_epsg(), src.transform, src.width, src.count, src.nodata))
            assert src.descriptions == tuple(BANDS)
            image = src.read()
            assert image.dtype == np.int16 and (image == 0).any() and (image > 0).any()
    assert len(set(profiles)) == 1 and profiles[0][0] == 32631 and profiles[0][2] == 16
    with rasterio.open(files[0]) as src:
        bounds = src.bounds
    with open(synthetic_root / "cube_points.csv") as handle:
        points = list(csv.DictReader(handle))
    assert points and all(bounds.left < float(p["x"]) < bounds.right for p in points)
    assert all(bounds.bottom < float(p["y"]) < bounds.top for p in points)


def test_command_line_refuses_to_overwrite(tmp_path, capsys):
    main(["demo", str(tmp_path), "--points", "10", "--seasons", "[2021]", "--cube_size", "0"])
    assert "train=" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["demo", str(tmp_path), "--points", "10"])
    assert "already holds a dataset" in capsys.readouterr().err


def half_ndvi_day(root, crop: str) -> float:
    """Mean day (since the season start) of the first date a crop's NDVI passes 0.5."""
    dm = SITSDataModule(str(root))
    table = dm.load_split("train")
    k = dm.classes.index(crop)
    days = []
    for i in np.flatnonzero(table.labels == k):
        rows = slice(table.starts[i], table.starts[i] + table.lengths[i])
        red = table.values[rows, BANDS.index("B04")]
        nir = table.values[rows, BANDS.index("B08")]
        green = np.flatnonzero((nir - red) / (nir + red) > 0.5)
        if len(green):
            first = table.dates[rows][green[0]].astype("datetime64[D]")
            days.append((first - np.datetime64(dm.season.first_date(table.seasons[i]))).astype(int))
    return float(np.mean(days))


def test_a_region_is_warmer_sows_later_has_its_crop_mix_and_soils(tmp_path):
    base = dict(points=150, seasons=[2021], warm_season=None, cube_size=0, seed=4)
    generate(tmp_path / "home", **base)
    generate(tmp_path / "same", **base, region=Region())
    home = pq.read_table(tmp_path / "home" / "train" / "features.pq")
    assert home.equals(pq.read_table(tmp_path / "same" / "train" / "features.pq"))
    generate(tmp_path / "warm", **base, region=Region(warmth=3.0, name="warm"))
    generate(tmp_path / "late", **base, region=Region(sowing_shift=20.0))
    # maize turns green earlier in a warmer region, later where it is sown later
    home_day = half_ndvi_day(tmp_path / "home", "mais")
    assert half_ndvi_day(tmp_path / "warm", "mais") < home_day - 5
    assert half_ndvi_day(tmp_path / "late", "mais") > home_day + 10
    ids = pq.read_table(tmp_path / "warm" / "train" / "labels.pq")["poi_id"].to_pylist()
    assert all(i.startswith("warm_p") for i in ids)
    crops = {"mais": 0.7, "tournesol": 0.3}
    generate(tmp_path / "south", **base, region=Region(crops=crops, arable_share=0.9, soil=1.3))
    labels = set(pq.read_table(tmp_path / "south" / "train" / "labels.pq")["label"].to_pylist())
    assert labels <= {"MIS", "MIE", "TRN", "PPH", "BOP", "J5M"} and "TRN" in labels
    meta = (tmp_path / "south" / "meta.yaml").read_text()
    assert "arable_share: 0.9" in meta and "soil: 1.3" in meta
    with pytest.raises(ConfigError, match=r"unknown crops \['rice'\]"):
        generate(tmp_path / "bad", **base, region=Region(crops={"rice": 1.0}))
    assert not (tmp_path / "bad").exists()
