"""Labelled pixels for `cmap samples` from a label raster in a NetCDF file: parcels kept whole
by the splits, splits stratified by class, the label mapping carried into the samples folder."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr
import yaml
from rasterio.transform import from_origin

from cmap.data.labels.samples import assign_splits
from cmap.data.labels.sources import parcel_ids
from cmap.data.series.module import SITSDataModule
from cmap.errors import DataError
from cmap.main import main
from tests.helpers import write_netcdf

GRID = from_origin(500_000.0, 4_800_000.0, 10.0, 10.0)


def write_labels(path, labels: np.ndarray, transform=GRID) -> None:
    h, w = labels.shape
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    ds = xr.Dataset(
        {"CT": (("y", "x"), labels, {"_FillValue": 0, "grid_mapping": "spatial_ref"})},
        {"y": ys, "x": xs},
    )
    ds.coords["spatial_ref"] = xr.Variable(
        (), 0, {"crs_wkt": rasterio.crs.CRS.from_epsg(32631).to_wkt()}
    )
    ds.to_netcdf(path, engine="h5netcdf")


def fields() -> np.ndarray:
    """12 x 12 labels: 8 fields of 3 x 6 pixels in 4 rows of 2, codes 1200 (3 fields) and 9120
    (4) in a checkerboard (no two fields of one code share a side) and one 7900; row 0 is
    unlabelled."""
    labels = np.zeros((12, 12), np.uint16)
    for k in range(8):
        row, col = divmod(k, 2)
        code = 7900 if k == 7 else (1200 if (row + col) % 2 == 0 else 9120)
        labels[row * 3 : row * 3 + 3, col * 6 : col * 6 + 6] = code
    labels[0, :] = 0
    return labels


def test_parcels_are_patches_of_one_label():
    labels = fields()
    ids = parcel_ids(labels, labels != 0)
    assert (ids[labels == 0] == 0).all()
    assert len(np.unique(ids[labels != 0])) == 8  # fields of another code are other parcels
    labels[3:6, 0:6] = 1200  # touches three 1200 fields: one parcel of four fields
    assert len(np.unique(parcel_ids(labels, labels != 0)[labels != 0])) == 5


def test_splits_keep_groups_whole_and_share_out_every_class():
    groups = np.repeat(np.arange(40), 5).astype(str)
    labels = np.repeat(np.where(np.arange(40) < 10, "rare", "common"), 5)
    for seed in range(4):
        split = assign_splits(groups, [0.6, 0.2, 0.2], seed, labels)
        assert all(len(set(split[groups == g])) == 1 for g in np.unique(groups))
        rare = np.bincount(split[labels == "rare"][::5], minlength=3)
        assert rare.tolist() == [6, 2, 2]  # 10 rare fields: 6 / 2 / 2, whatever the seed


@pytest.fixture
def stack_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.integers(100, 5000, (5, 12, 12)).astype(np.uint16)
    days = ["2021-01-10", "2021-03-10", "2021-05-10", "2021-07-10", "2021-09-10"]
    attrs = {"_FillValue": 0, "scale_factor": 1e-4}
    write_netcdf(
        tmp_path / "S2.nc", {"B04": values, "B08": values + 1}, days, GRID,
        attrs={"B04": attrs, "B08": attrs},
    )  # fmt: skip
    write_labels(tmp_path / "labels.nc", fields())
    (tmp_path / "mapping.yaml").write_text("maize: [1200]\ngrassland: [9120]\n")
    return tmp_path


def test_samples_from_a_netcdf_label_raster_carry_parcels_and_mapping(stack_and_labels, capsys):
    root = stack_and_labels
    out = root / "samples"
    main(
        [
            *("samples", str(root / "S2.nc"), str(out)),
            *("--label_raster", str(root / "labels.nc"), "--label_band", "CT"),
            *("--label_mapping", str(root / "mapping.yaml"), "--seed", "3"),
        ]
    )
    said = capsys.readouterr().out
    assert "1 label(s) not in the label mapping, trained as 'other': 7900 (18 pixels)" in said
    labels = fields()
    ids = parcel_ids(labels, labels != 0)
    split_of = {}
    for split in ("train", "val", "test"):
        table = pq.read_table(out / split / "labels.pq").to_pydict()
        for poi in table["poi_id"]:
            row, col = (int(v) for v in poi[1:].split("_c"))
            split_of[(row, col)] = split
    assert len(split_of) == (labels != 0).sum()
    for parcel in np.unique(ids[ids > 0]):
        rows, cols = np.nonzero(ids == parcel)
        assert len({split_of[(r, c)] for r, c in zip(rows, cols)}) == 1  # a parcel, one split
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert meta["label_mapping"] == "label_mapping.yaml" and meta["bands"] == ["B04", "B08"]
    assert (out / "label_mapping.yaml").read_text() == (root / "mapping.yaml").read_text()
    data = SITSDataModule(str(out))  # no flag: the samples folder names its mapping
    data.setup("fit")
    assert data.classes == ["grassland", "maize", "other"]
    features = pq.read_table(out / "train" / "features.pq").to_pydict()
    assert 0.01 < min(features["B04"]) and max(features["B04"]) < 0.51  # scaled by the file


def test_a_label_raster_on_another_grid_is_named(stack_and_labels, capsys):
    root = stack_and_labels
    write_labels(root / "shifted.nc", fields(), from_origin(500_010.0, 4_800_000.0, 10.0, 10.0))
    run = ["samples", str(root / "S2.nc"), str(root / "o"), "--label_raster"]
    with pytest.raises(SystemExit):
        main([*run, str(root / "shifted.nc")])
    assert "shifted.nc: is not aligned with the cube: 12 x 12 pixels at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*run, str(root / "labels.nc"), "--label_band", "LC"])
    assert "labels.nc: has no 2-D variable LC; it holds CT" in capsys.readouterr().err
    assert not (root / "o").exists()


def test_samples_of_a_calendar_year_season_count_days_from_january(stack_and_labels):
    root = stack_and_labels
    out = root / "samples"
    main(["samples", str(root / "S2.nc"), str(out), "--label_raster", str(root / "labels.nc")])
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    assert (meta["season_start"], meta["season_year"]) == ("11-01", "end")
    meta |= {"season_start": "01-01", "season_year": "start"}
    (out / "meta.yaml").write_text(yaml.safe_dump(meta))
    data = SITSDataModule(str(out), batch_size=4)  # labels say season 2021: 2021-01-01 on
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["days"][0][:5].tolist() == [9, 68, 129, 190, 252]  # 01-10, 03-10, ... 09-10
    meta["season_year"] = "first"
    (out / "meta.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(DataError, match="meta.yaml: season_year must be 'end' or 'start'"):
        SITSDataModule(str(out))
