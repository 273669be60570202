"""Extra per-date tables: growing degree days, extra channels, gaps and their errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from cmap.cli import build
from cmap.data import SITSDataModule
from cmap.data.weather import growing_degree_days
from cmap.errors import DataError
from cmap.models.embeddings.positions import PositionalEncoding
from tests.helpers import REPO, day, write_split

ACQUISITIONS = ["2020-11-01", "2020-11-04", "2020-11-09", "2021-01-15"]


def temperatures(points=("p1", "p2"), start="2020-10-20", end="2021-12-31", skip=()):
    """Daily temperatures alternating 3 and 10 degC (p2: 1 degC warmer), minus `skip`."""
    first, last = day(start), day(end)
    rows = {"poi_id": [], "date": [], "temperature": []}
    for k, point in enumerate(points):
        for i in range((last - first).days + 1):
            date = first + dt.timedelta(days=i)
            if (point, date.isoformat()) in skip:
                continue
            rows["poi_id"].append(point)
            rows["date"].append(date)
            rows["temperature"].append((3.0 if i % 2 == 0 else 10.0) + k)
    return rows


@pytest.fixture
def root(tmp_path):
    """Two points with four acquisitions each in season 2021 (starting 2020-11-01)."""
    features = {
        "poi_id": ["p1"] * 4 + ["p2"] * 4,
        "date": [day(d) for d in ACQUISITIONS] * 2,
        "B04": [0.1, 0.2, 0.3, 0.4] * 2,
        "B08": [0.5, 0.6, 0.7, 0.8] * 2,
    }
    labels = {"poi_id": ["p1", "p2"], "season": [2021, 2021], "label": ["a", "b"]}
    for split in ("train", "val"):
        write_split(tmp_path / split, features, labels)
    (tmp_path / "meta.yaml").write_text("season_start: '11-01'\n")
    return tmp_path


def write_temperatures(root, **kwargs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split in ("train", "val"):
        pq.write_table(pa.table(temperatures(**kwargs)), root / split / "temperatures.pq")


def first_batch(root, **kwargs):
    data = SITSDataModule(str(root), batch_size=8, **kwargs)
    data.setup("validate")
    return next(iter(data.val_dataloader()))


def hand_gdd(point_offset: float, base: float) -> list[float]:
    """GDD from 2020-11-01 to each acquisition date inclusive, day by day."""
    first_series_day = day("2020-10-20")
    out = []
    for text in ACQUISITIONS:
        total, date = 0.0, day("2020-11-01")
        while date <= day(text):
            i = (date - first_series_day).days
            total += max(0.0, (3.0 if i % 2 == 0 else 10.0) + point_offset - base)
            date += dt.timedelta(days=1)
        out.append(total)
    return out


@pytest.mark.parametrize("base", [0.0, 5.0])
def test_growing_degree_days_match_a_hand_computed_series(root, base):
    write_temperatures(root)
    batch = first_batch(root, positions="gdd", gdd_base=base)
    assert batch["positions"].dtype == torch.float32
    assert batch["positions"][0].tolist() == pytest.approx(hand_gdd(0.0, base))
    assert batch["positions"][1].tolist() == pytest.approx(hand_gdd(1.0, base))
    assert batch["days"][0].tolist() == [0, 3, 8, 75]  # calendar days stay available
    assert growing_degree_days(np.array([1.0, -2.0, 4.0]), 0.0).tolist() == [0, 1, 1, 5]


def test_missing_days_are_interpolated_and_channels_read_at_acquisition_dates(root):
    # 2020-11-04 (an acquisition) and 11-05 are missing for p1: filled linearly from
    # 11-03 (3 degC: day 14 of the series) and 11-06 (10 degC: day 17).
    write_temperatures(root, skip={("p1", "2020-11-04"), ("p1", "2020-11-05")})
    batch = first_batch(
        root, positions="gdd", extra_channels=["temperatures.temperature"], max_gap_days=2
    )
    assert batch["ts"].shape[-1] == 3  # B04, B08, temperature
    temperature = batch["ts"][0, :, 2].tolist()
    assert temperature[1] == pytest.approx(3 + 7 / 3)  # 11-04, a third of the way
    assert temperature[0] == 3.0 and temperature[3] == 10.0  # 11-01 and 01-15 as given
    gdd = batch["positions"][0].tolist()  # 11-05 (filled) to 11-09: 3 + 14/3, 10, 3, 10, 3
    assert gdd[2] - gdd[1] == pytest.approx(3 + 14 / 3 + 10 + 3 + 10 + 3, rel=1e-6)


def test_a_gap_longer_than_allowed_names_the_point_and_dates(root):
    write_temperatures(root, skip={("p2", "2020-12-0" + str(d)) for d in range(1, 6)})
    with pytest.raises(DataError, match=r"point p2 has no value from 2020-12-01 to 2020-12-05"):
        first_batch(root, positions="gdd")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("absent_point", r"no temperature value for 1 point\(s\), e\.g\. p2"),
        ("late_start", r"needs 2020-11-01 to 2021-01-15 but has 2020-11-03 to"),
        ("no_table", r"val/temperatures\.pq: extra table 'temperatures' not found"),
        ("bad_column", r"missing column\(s\) temp"),
        ("bad_name", r"extra features are named 'table\.column', got 'temperature'"),
    ],
)
def test_extra_table_errors(root, kind, message):
    options = {"positions": "gdd"}
    if kind == "absent_point":
        write_temperatures(root, points=("p1",))
    elif kind == "late_start":
        write_temperatures(root, start="2020-11-03")
    elif kind != "no_table":  # no_table: no temperatures.pq written at all
        write_temperatures(root)
        options["temperature"] = "temperatures.temp" if kind == "bad_column" else "temperature"
    with pytest.raises(DataError, match=message):
        first_batch(root, **options)


def test_day_tables_refuse_thermal_positions():
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="use ThermalPositionalEncoding"):
        PositionalEncoding(8)(torch.tensor([[1.5, 20.0, 300.0]]), mask)


def test_thermal_positions_flow_through_training_and_a_checkpoint(synthetic_root, tmp_path):
    from cmap.tasks.classifier import Classifier

    args = ["--config", str(REPO / "configs" / "thermal.yaml")]
    args += ["--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    args += ["--trainer.limit_train_batches", "2", "--trainer.enable_progress_bar", "false"]
    cli = build(args)
    cli.trainer.fit(cli.model, cli.datamodule)
    batch = next(iter(cli.datamodule.val_dataloader()))
    assert batch["positions"].dtype == torch.float32 and batch["positions"].max() > 1000
    ckpt = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    reloaded = Classifier.load_from_checkpoint(ckpt).eval()
    cli.model.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(batch), cli.model(batch))
    assert type(reloaded.encoder.embedding.position_encoder).__name__ == (
        "ThermalPositionalEncoding"
    )
