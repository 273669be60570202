"""Batch assembly: augmentation and training order are seeded and reproducible."""

from __future__ import annotations

import pytest
import torch

from cmap.data import SITSDataModule
from cmap.data.series.dataset import SeriesDataset


@pytest.fixture(scope="module")
def table(synthetic_root):
    return SITSDataModule(str(synthetic_root)).load_split("train")


def test_date_dropout_hides_dates_but_keeps_one_and_is_seeded(table):
    plain = SeriesDataset(table).__getitems__(list(range(64)))
    dropped = SeriesDataset(table, date_dropout=0.5, seed=1)
    batch = dropped.__getitems__(list(range(64)))
    assert (batch["mask"] <= plain["mask"]).all()  # only valid dates can be hidden
    assert (batch["mask"].sum(1) >= 1).all()
    share = 1 - batch["mask"].sum() / plain["mask"].sum()
    assert 0.4 < float(share) < 0.6
    hidden = plain["mask"] & ~batch["mask"]
    assert (batch["ts"][hidden] == 0).all() and (batch["positions"][hidden] == 0).all()
    kept = batch["mask"]
    torch.testing.assert_close(batch["ts"][kept], plain["ts"][kept])  # no noise asked
    again = SeriesDataset(table, date_dropout=0.5, seed=1).__getitems__(list(range(64)))
    assert torch.equal(again["mask"], batch["mask"])
    other = SeriesDataset(table, date_dropout=0.5, seed=2).__getitems__(list(range(64)))
    assert not torch.equal(other["mask"], batch["mask"])
    with pytest.raises(ValueError, match=r"date_dropout must be in \[0, 1\)"):
        SeriesDataset(table, date_dropout=1.0)


def test_date_sample_keeps_a_seeded_ordered_subset_of_each_series_dates(table):
    indices = list(range(64))
    plain = SeriesDataset(table).__getitems__(indices)
    short = SeriesDataset(table, date_sample=8, seed=1).__getitems__(indices)
    assert short["ts"].shape[1] == 8 < plain["ts"].shape[1]
    lengths = plain["mask"].sum(1)
    assert torch.equal(short["mask"].sum(1), lengths.clamp(max=8))  # padding only after dates
    assert (short["mask"].int().diff(dim=1) <= 0).all()
    for i in range(64):  # each kept date is one of the series' own, in date order
        days = short["days"][i][short["mask"][i]]
        assert (days.diff() > 0).all()
        own = {int(d): n for n, d in enumerate(plain["days"][i][plain["mask"][i]])}
        picked = [own[int(d)] for d in days]
        torch.testing.assert_close(short["ts"][i][: len(picked)], plain["ts"][i][picked])
    again = SeriesDataset(table, date_sample=8, seed=1).__getitems__(indices)
    assert torch.equal(again["days"], short["days"])
    other = SeriesDataset(table, date_sample=8, seed=2).__getitems__(indices)
    assert not torch.equal(other["days"], short["days"])
    with pytest.raises(ValueError, match="date_sample must be at least 1"):
        SeriesDataset(table, date_sample=0)


def test_noise_is_added_to_valid_values_only(table):
    plain = SeriesDataset(table).__getitems__(list(range(64)))
    noisy = SeriesDataset(table, noise_std=0.01, seed=0).__getitems__(list(range(64)))
    diff = (noisy["ts"] - plain["ts"])[plain["mask"]]
    assert abs(float(diff.mean())) < 1e-3 and 0.009 < float(diff.std()) < 0.011
    assert (noisy["ts"][~plain["mask"]] == 0).all()


def epoch_order(dm: SITSDataModule, epoch: int) -> list[int]:
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning does at each epoch start
    return torch.cat([batch["index"] for batch in loader]).tolist()


def test_training_order_depends_on_seed_and_epoch_only(synthetic_root):
    dm = SITSDataModule(str(synthetic_root), batch_size=16, seed=3, date_dropout=0.2)
    dm.setup("fit")
    first, second = epoch_order(dm, 0), epoch_order(dm, 1)
    assert sorted(first) == list(range(len(dm.datasets["train"])))
    assert first != second
    # Workers, a fresh process or a resumed run: epoch 1 has the same order and augmentation.
    workers = SITSDataModule(
        str(synthetic_root), batch_size=16, seed=3, date_dropout=0.2, num_workers=2
    )
    workers.setup("fit")
    assert epoch_order(workers, 1) == second
    loader = workers.train_dataloader()
    loader.sampler.set_epoch(1)
    reference = dm.train_dataloader()
    reference.sampler.set_epoch(1)
    for a, b in zip(loader, reference):
        assert torch.equal(a["mask"], b["mask"])
    other_seed = SITSDataModule(str(synthetic_root), batch_size=16, seed=4)
    other_seed.setup("fit")
    assert epoch_order(other_seed, 0) != first


@pytest.mark.parametrize(
    ("series", "expected"), [(50, 16), (96, 16), (435, 16), (1539, 64), (6144, 256), (10**6, 256)]
)
def test_auto_batch_size_follows_the_training_series(synthetic_root, series, expected):
    data = SITSDataModule(str(synthetic_root))  # batch_size "auto" by default
    assert data.batch_size == 256  # no training split yet (predict, validate)
    data.datasets["train"] = range(series)  # only its length matters
    assert data.batch_size == expected
    assert SITSDataModule(str(synthetic_root), batch_size=32).batch_size == 32


def test_time_shift_moves_each_series_by_one_seeded_shift(table):
    plain = SeriesDataset(table).__getitems__(list(range(64)))
    shifted = SeriesDataset(table, time_shift=7, seed=1, last_day=394).__getitems__(list(range(64)))
    mask = plain["mask"]
    assert torch.equal(shifted["mask"], mask) and torch.equal(shifted["ts"], plain["ts"])
    assert torch.equal(shifted["days"], plain["days"])  # plots keep the true dates
    moved = shifted["positions"] - plain["positions"]
    inside = mask & (plain["positions"] >= 7) & (plain["positions"] <= 394 - 7)
    for row in range(64):  # one shift per series, in [-7, 7]
        values = moved[row][inside[row]].unique()
        assert len(values) == 1 and -7 <= int(values[0]) <= 7
    assert len(moved[inside].unique()) > 5  # series get different shifts
    assert shifted["positions"][mask].min() >= 0 and shifted["positions"][mask].max() <= 394
    assert (shifted["positions"][~mask] == 0).all()
    again = SeriesDataset(table, time_shift=7, seed=1).__getitems__(list(range(64)))
    assert torch.equal(again["positions"], shifted["positions"])


def test_gdd_positions_refuse_a_time_shift(synthetic_root):
    with pytest.raises(ValueError, match="time_shift moves day positions"):
        SITSDataModule(str(synthetic_root), positions="gdd", time_shift=5)


def test_class_balance_draws_rare_classes_as_often_and_is_seeded(synthetic_root):
    dm = SITSDataModule(str(synthetic_root), batch_size=16, seed=3, class_balance=1.0)
    dm.setup("fit")
    labels = dm.datasets["train"].table.labels
    counts = torch.bincount(torch.as_tensor(labels))
    drawn = torch.cat([torch.as_tensor(labels[epoch_order(dm, e)]) for e in range(40)])
    shares = torch.bincount(drawn, minlength=len(counts)).float() / len(drawn)
    assert len(drawn) == 40 * len(labels)  # an epoch draws as many series as the split has
    assert counts.max() > 4 * counts.min()  # the split is imbalanced ...
    assert torch.allclose(shares, torch.full_like(shares, 1 / len(counts)), atol=0.02)  # not so
    assert epoch_order(dm, 5) == epoch_order(dm, 5) != epoch_order(dm, 6)
    half = SITSDataModule(str(synthetic_root), batch_size=16, seed=3, class_balance=0.5)
    half.setup("fit")
    drawn = torch.as_tensor(labels[sum((epoch_order(half, e) for e in range(40)), [])])
    shares = torch.bincount(drawn, minlength=len(counts)).float() / len(drawn)
    expected = counts.float().sqrt() / counts.float().sqrt().sum()  # n_c * n_c^-0.5
    assert torch.allclose(shares, expected, atol=0.02)
