"""Samples layout reading, validation and the dataset's batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from cmap.data import SITSDataModule
from cmap.errors import DataError
from tests.helpers import REPO, SHARED, day, needs_shared, write_split


def module(root, **kwargs):
    return SITSDataModule(
        str(root),
        label_mapping=str(root / "mapping.yaml"),
        classes=["other", "ble_tendre", "mais"],
        **kwargs,
    )


def test_items_have_positions_masks_and_scaled_values(tiny_root):
    dm = module(tiny_root, batch_size=8)
    dm.setup("fit")
    ds = dm.datasets["train"]
    assert len(ds) == 3
    batch = ds.__getitems__([0, 1, 2])
    # p1: the NaN row and the date outside season 2021 are dropped; rows sorted by date.
    assert batch["ts"].shape == (3, 2, 2)
    assert batch["mask"].tolist() == [[True, True], [True, False], [True, False]]
    assert batch["positions"][0].tolist() == [0, 120]  # 2020-11-01 and 2021-03-01
    torch.testing.assert_close(batch["ts"][0], torch.tensor([[0.01, 0.1], [0.03, 0.3]]))
    # p2's second date holds the nodata value 0 and is masked out; padding is zero.
    assert batch["positions"][1].tolist() == [185, 0]
    assert batch["ts"][1, 1].tolist() == [0.0, 0.0]
    # Codes go through the mapping; the unmapped code PPH becomes `other`.
    assert batch["class"].tolist() == [1, 2, 0]
    assert batch["season"].tolist() == [2021, 2021, 2021]
    item = ds[2]
    assert item["ts"].shape == (1, 2) and item["class"] == 0


def test_loader_batches_and_seeded_shuffle(synthetic_root):
    def first_indices():
        dm = SITSDataModule(str(synthetic_root), batch_size=16, seed=5)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))["index"].tolist()

    dm = SITSDataModule(str(synthetic_root), batch_size=16)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["ts"].shape[0] == 16 and batch["ts"].shape[2] == 10
    assert batch["ts"].shape[1] == int(batch["mask"].sum(1).max())
    assert (batch["positions"] < 395).all() and (batch["positions"] >= 0).all()
    assert first_indices() == first_indices()


def test_a_lone_last_training_series_is_left_out_not_batched_alone(synthetic_root):
    from cmap.data.series.dataset import series_loader

    dm = SITSDataModule(str(synthetic_root))
    dm.setup("fit")
    train = dm.datasets["train"]
    n = len(train)

    def sizes(batch_size, shuffle):
        loader = series_loader(train, batch_size, shuffle, (0, 1), 0, 0, False)
        return [len(b["class"]) for b in loader]

    # n - 1 series, then one alone: batch norm cannot train on a batch of one
    assert sizes(n - 1, shuffle=True) == [n - 1]
    assert sizes(n - 1, shuffle=False) == [n - 1, 1]  # evaluation keeps every series
    assert sizes(n - 2, shuffle=True) == [n - 2, 2]


def test_bands_and_classes_come_from_meta_or_files(tiny_root, synthetic_root):
    dm = SITSDataModule(str(tiny_root), label_mapping=str(tiny_root / "mapping.yaml"))
    assert dm.bands == ["B04", "B08"]  # every non-key column
    assert dm.classes == ["ble_tendre", "mais", "other"]  # inferred from train, unmapped -> other
    dm = SITSDataModule(str(synthetic_root))
    assert dm.num_bands == 10 and dm.classes[0] == "other" and dm.num_classes == 7
    assert dm.scale == 0.0001 and dm.season.start == "11-01"


def test_unknown_labels_are_dropped_without_other(tiny_root):
    dm = SITSDataModule(
        str(tiny_root),
        label_mapping=str(tiny_root / "mapping.yaml"),
        classes=["ble_tendre", "mais"],
    )
    assert len(dm.load_split("train")) == 2


def test_fraction_and_cap_are_seeded_per_class(synthetic_root):
    full = SITSDataModule(str(synthetic_root)).load_split("train")
    dm = SITSDataModule(str(synthetic_root), max_per_class=5)
    capped = dm.load_split("train")
    assert max(capped.class_counts(dm.classes).values()) == 5
    assert set(capped.poi_ids) <= set(full.poi_ids)
    half = SITSDataModule(str(synthetic_root), fraction=0.5).load_split("train")
    assert abs(len(half) - len(full) / 2) <= 7


def test_season_filter(synthetic_root):
    table = SITSDataModule(str(synthetic_root), seasons=[2021]).load_split("val")
    assert set(table.seasons.tolist()) == {2021}


@needs_shared
def test_real_dataset_reads(tmp_path):
    dm = SITSDataModule(str(SHARED / "cerrado_2classes"))
    table = dm.load_split("test")
    assert len(table) == 137 and dm.bands == ["NDVI", "EVI"]
    assert set(table.lengths.tolist()) == {23}


# ---- bad input: a clear message naming the file and the problem ----------------------------


def rewrite(root, split, name, **columns):
    path = root / split / name
    table = pq.read_table(path)
    for key, value in columns.items():
        if value is None:
            table = table.drop_columns([key])
        else:
            table = table.set_column(table.column_names.index(key), key, value)
    pq.write_table(table, path)
    return path


def test_missing_band_column(tiny_root):
    path = rewrite(tiny_root, "train", "features.pq", B08=None)
    with pytest.raises(
        DataError, match=r"missing column\(s\) B08; the file has poi_id, date, B04"
    ) as err:
        module(tiny_root, bands=["B04", "B08"]).load_split("train")
    assert err.value.path == path


def test_wrong_dtypes(tiny_root):
    rewrite(tiny_root, "train", "features.pq", B04=pa.array(["a"] * 7))
    with pytest.raises(DataError, match="band column 'B04' must be numeric, found string"):
        module(tiny_root).load_split("train")


def test_string_dates_are_refused(tiny_root):
    rewrite(tiny_root, "val", "features.pq", date=pa.array(["2021-01-01"] * 7))
    with pytest.raises(DataError, match="column 'date' must be a date or timestamp"):
        module(tiny_root).load_split("val")


def test_infinite_values(tiny_root):
    rewrite(tiny_root, "train", "features.pq", B08=pa.array([1.0, np.inf, 1, 1, 1, 1, 1]))
    with pytest.raises(DataError, match="1 infinite value"):
        module(tiny_root).load_split("train")


def test_duplicate_rows(tiny_root):
    write_split(
        tiny_root / "train",
        {"poi_id": ["p1", "p1"], "date": [day("2021-01-01")] * 2, "B04": [1, 2], "B08": [1, 2]},
        None,
    )
    with pytest.raises(
        DataError, match=r"1 duplicate \(poi_id, date\) row\(s\), e.g. \(p1, 2021-01-01\)"
    ):
        module(tiny_root).load_split("train")


def test_labels_without_features(tiny_root):
    write_split(
        tiny_root / "train",
        {"poi_id": ["p1"], "date": [day("2021-01-01")], "B04": [1.0], "B08": [2.0]},
        {"poi_id": ["p1", "p9"], "season": [2021, 2021], "label": ["BTH", "BTH"]},
    )
    with pytest.raises(DataError, match=r"labels\.pq: 1 labelled point\(s\) have no valid row.*p9"):
        module(tiny_root).load_split("train")


def test_missing_and_corrupted_files(tiny_root):
    (tiny_root / "val" / "labels.pq").unlink()
    with pytest.raises(DataError, match=r"val/labels\.pq: file not found"):
        module(tiny_root).load_split("val")
    (tiny_root / "test" / "features.pq").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        module(tiny_root).load_split("test")
    with pytest.raises(DataError, match="samples folder not found"):
        SITSDataModule(str(tiny_root / "nowhere"))


def test_bad_label_columns_and_mapping(tiny_root):
    rewrite(tiny_root, "train", "labels.pq", season=pa.array(["2021"] * 3))
    with pytest.raises(DataError, match="column 'season' must be an integer year, found string"):
        module(tiny_root).load_split("train")
    (tiny_root / "mapping.yaml").write_text("ble_tendre: [BTH]\nmais: [BTH]\n")
    with pytest.raises(DataError, match="code 'BTH' is listed under both 'ble_tendre' and 'mais'"):
        module(tiny_root)


def test_bad_season_start(tiny_root):
    with pytest.raises(DataError, match="season_start must be 'MM-DD'"):
        module(tiny_root, season_start="November")


def test_unlabelled_folders_yield_every_point_season(tiny_root):
    from cmap.data.season import Season
    from cmap.data.series.samples import load_series

    (tiny_root / "train" / "labels.pq").unlink()
    table = load_series(
        tiny_root / "train",
        ["B04", "B08"],
        [],
        Season("11-01", 395),
        nodata=0,
        labelled=False,
    )
    pairs = sorted(zip(table.poi_ids.tolist(), table.seasons.tolist()))
    # Windows overlap by 30 days: 2020-11-01 lies in seasons 2020 and 2021 of p1.
    assert pairs == [("p1", 2020), ("p1", 2021), ("p1", 2022), ("p2", 2021), ("p3", 2021)]
    assert (table.labels == -1).all()
    assert table.lengths.tolist() == [1, 2, 1, 1, 1]


def test_data_module_without_labels_serves_unlabelled_samples(tiny_root):
    for split in ("train", "val"):
        (tiny_root / split / "labels.pq").unlink()
    data = SITSDataModule(
        str(tiny_root), labelled=False, nodata=0, batch_size=8, min_dates=1, min_span=0
    )
    assert data.classes == [] and data.num_bands == 2
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert len(batch["class"]) == 5 and (batch["class"] == -1).all()
    with pytest.raises(DataError, match="labels.pq"):  # a Classifier's data needs its labels
        SITSDataModule(str(tiny_root), nodata=0).setup("fit")


def test_unlabelled_season_fragments_are_dropped(caplog):
    """The demo's points hold seasons 2019-2021; the overlapping 395-day windows of 2018 and
    2022 catch a few November dates of a real season and must not become samples."""
    caplog.set_level("INFO", logger="cmap")
    unlabelled = SITSDataModule(str(REPO / "data" / "demo"), labelled=False).load_split("train")
    labelled = SITSDataModule(str(REPO / "data" / "demo")).load_split("train")
    assert sorted(set(unlabelled.seasons.tolist())) == [2019, 2020, 2021]
    assert len(unlabelled) == len(labelled) == 1539
    assert "984 of 2523 unlabelled season(s) dropped as fragments" in caplog.text
    last = unlabelled.starts + unlabelled.lengths - 1
    assert (unlabelled.dates[last] - unlabelled.dates[unlabelled.starts]).min() >= 395 // 2
    everything = SITSDataModule(
        str(REPO / "data" / "demo"), labelled=False, min_dates=1, min_span=0
    )
    assert len(everything.load_split("train")) == 2523


@pytest.mark.parametrize("written", ["'0'", '"0.0"', "0"])
def test_nodata_written_as_text_in_meta_yaml_is_the_number(tiny_root, written):
    """`nodata: "0"` must mask the stored zeros as `nodata: 0` does, never be ignored."""
    (tiny_root / "meta.yaml").write_text(f"nodata: {written}\n")
    dm = module(tiny_root, batch_size=8)
    dm.setup("fit")
    batch = dm.datasets["train"].__getitems__([0, 1, 2])
    assert batch["mask"].tolist() == [[True, True], [True, False], [True, False]]


def test_ids_stored_in_other_widths_match(tiny_root):
    """pandas writes large_string, other tools string; int32 and int64 ids hold the same
    numbers (including ids above 2**31): both sides compare by value."""
    base = module(tiny_root, batch_size=8)
    base.setup("fit")
    expected = base.datasets["train"].__getitems__([0, 1, 2])
    path = tiny_root / "train" / "labels.pq"
    labels = pq.read_table(path)
    pq.write_table(labels.set_column(0, "poi_id", labels["poi_id"].cast(pa.large_string())), path)
    other = module(tiny_root, batch_size=8)
    other.setup("fit")
    got = other.datasets["train"].__getitems__([0, 1, 2])
    assert got["class"].tolist() == expected["class"].tolist()
    torch.testing.assert_close(got["ts"], expected["ts"])
    big = 2**31 + 5  # features int64, labels int32 cannot hold it; labels int64, features int32
    for split in ("train", "val", "test"):
        features = pq.read_table(tiny_root / split / "features.pq")
        ids = pa.array([{"p1": big, "p2": 7, "p3": 8}[p] for p in features["poi_id"].to_pylist()])
        pq.write_table(features.set_column(0, "poi_id", ids), tiny_root / split / "features.pq")
        labels = pq.read_table(tiny_root / split / "labels.pq")
        ids = pa.array([big, 7, 8], pa.int64())
        pq.write_table(labels.set_column(0, "poi_id", ids), tiny_root / split / "labels.pq")
    numbers = module(tiny_root, batch_size=8)
    numbers.setup("fit")
    assert numbers.datasets["train"].table.poi_ids.tolist() == [big, 7, 8]
    for split in ("train", "val", "test"):  # int32 features cannot hold the labels' big id
        features = pq.read_table(tiny_root / split / "features.pq")
        ids = pa.array([1 if p == big else p for p in features["poi_id"].to_pylist()], pa.int32())
        pq.write_table(features.set_column(0, "poi_id", ids), tiny_root / split / "features.pq")
    with pytest.raises(DataError, match=f"1 labelled point.s. have no valid row .*{big}"):
        module(tiny_root, batch_size=8).setup("fit")


def test_rows_without_a_poi_id_are_refused_not_dropped(tiny_root):
    path = tiny_root / "train" / "features.pq"
    features = pq.read_table(path)
    ids = features["poi_id"].to_pylist()
    ids[2] = None
    pq.write_table(features.set_column(0, "poi_id", pa.array(ids)), path)
    with pytest.raises(DataError, match=r"train/features.pq: 1 row\(s\) without a poi_id"):
        module(tiny_root, batch_size=8).setup("fit")
