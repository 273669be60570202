"""The benchmarks' own arithmetic: seed ensembles, cross-validation folds, skewed test sets."""

from __future__ import annotations

import importlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from cmap.cli import build
from cmap.tasks.weights import load_encoder_weights
from tests.helpers import REPO, SHARED


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module


def test_a_seed_ensemble_scores_the_mean_probabilities(bench):
    accuracy = bench("_scores")
    target = np.array([0, 1, 1, 0])
    first = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.2, 0.8]])  # wrong on 1 and 3
    second = np.array([[0.6, 0.4], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])  # right everywhere
    third = np.array([[0.6, 0.4], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])  # wrong on 2
    result = accuracy.seed_ensemble([first, second, third], [target] * 3, ["a", "b"])
    assert result["oa"] == 1.0 and result["f1_macro"] == 1.0
    with pytest.raises(ValueError, match="test splits differ"):
        accuracy.seed_ensemble([first, second], [target, 1 - target], ["a", "b"])


def test_cross_validation_folds_deal_every_class_out_evenly(bench):
    selection = bench("selection")
    classes = np.array(["a"] * 10 + ["b"] * 7 + ["c"] * 3)
    fold = selection.stratified_folds(classes, 4, np.random.default_rng(0))
    for c in "abc":
        counts = np.bincount(fold[classes == c], minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.sum() == (classes == c).sum()
    again = selection.stratified_folds(classes, 4, np.random.default_rng(0))
    assert np.array_equal(fold, again)


def test_the_skewed_test_set_keeps_two_main_classes_at_the_share(bench):
    prior_shift = bench("prior_shift")
    target = np.repeat(np.arange(5), [50, 40, 30, 20, 10])
    rows = prior_shift.skewed(target, 0.9, seed=0)
    kept = target[rows]
    assert (kept < 2).sum() == 90 and len(rows) == 100  # classes 0 and 1 whole, 10 others
    assert len(set(rows)) == len(rows) and np.all(np.diff(rows) > 0)


def test_pretraining_takes_the_classifier_encoder_and_its_weights_fit_it(
    bench, synthetic_root, tmp_path
):
    pretraining = bench("_pretrain")
    classifier = REPO / "configs" / "classifier.yaml"
    config = pretraining.pretrain_config(classifier, tmp_path / "pretrain.yaml")
    written = yaml.safe_load(config.read_text())["model"]["init_args"]
    wanted = yaml.safe_load(classifier.read_text())["model"]["init_args"]["encoder"]
    assert written["encoder"] == wanted
    assert written["decoder"]["init_args"]["in_dim"] == 128
    assert written["mask_ratio"] == 0.75  # the pretraining task of configs/pretrain.yaml
    weights, done = pretraining.pretrain(synthetic_root, config, 1, 0, tmp_path / "work")
    assert done["pretrain_epochs"] == 1 and done["pretrain_series"] > 50
    model = build(["--config", str(classifier), "--trainer.logger", "false"]).model
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    load_encoder_weights(model.encoder, weights)  # strict: the same encoder
    after = model.encoder.state_dict()
    assert all(after[k].shape == v.shape for k, v in before.items())
    assert sum(not after[k].equal(v) for k, v in before.items()) > len(before) // 2


def test_pooled_splits_train_on_every_series_and_keep_val(bench, synthetic_root, tmp_path):
    pretraining = bench("_pretrain")
    pool = pretraining.pooled_splits(synthetic_root, tmp_path / "pool")
    rows = lambda root, split: pq.read_table(root / split / "features.pq").num_rows  # noqa: E731
    assert rows(pool, "train") == sum(rows(synthetic_root, s) for s in ("train", "val", "test"))
    assert not (pool / "train" / "labels.pq").exists()  # pretraining reads no labels
    assert pq.read_table(pool / "val" / "labels.pq").equals(
        pq.read_table(synthetic_root / "val" / "labels.pq")
    )
    assert (pool / "meta.yaml").read_text() == (synthetic_root / "meta.yaml").read_text()


def test_accuracy_runs_a_pretrained_variant_from_every_series(bench, synthetic_root, tmp_path):
    accuracy = bench("accuracy")
    out = tmp_path / "accuracy.json"
    argv = ["--root", str(synthetic_root), "--name", "pretrained", "--pretrain", "all"]
    argv += ["--pretrain-epochs", "1", "--max-epochs", "1", "--max-series", "4", "--seeds", "0"]
    result = accuracy.main([*argv, "--out", str(out)])
    run = result["datasets"][synthetic_root.name]["models"]["pretrained"]
    series = sum(
        pq.read_table(synthetic_root / s / "labels.pq").num_rows for s in ("train", "val", "test")
    )
    assert run["pretrain_on"] == "all" and run["pretrain_series"] == series
    assert run["pretrain_epochs"] == 1 and run["per_seed"][0]["train_series"] <= 7 * 4
    with pytest.raises(SystemExit):  # a pretrained run is a named variant of the default
        accuracy.main(["--root", str(synthetic_root), "--pretrain", "all", "--out", str(out)])


@pytest.mark.skipif(not (SHARED / "worldcereal_flanders").is_dir(), reason="needs ../shared")
def test_flanders_pixels_pool_both_patches_by_parcel(bench, tmp_path):
    pixels = bench("flanders_pixels")
    counts = pixels.pool(SHARED / "worldcereal_flanders", tmp_path / "pixels", "[0.6, 0.2, 0.2]")
    ids = []
    for split in ("train", "val", "test"):
        labels = pq.read_table(tmp_path / "pixels" / split / "labels.pq")
        assert labels.num_rows == sum(counts[split].values())
        ids += labels["poi_id"].to_pylist()
        features = pq.read_table(tmp_path / "pixels" / split / "features.pq")
        assert set(features["poi_id"].to_pylist()) == set(labels["poi_id"].to_pylist())
        assert {i.split(":")[0] for i in labels["poi_id"].to_pylist()} == set(pixels.PATCHES)
    assert len(ids) == len(set(ids)) == 2236 + 3725  # every labelled pixel of both patches
    assert counts["train"]["1510"] == 294  # winter barley: one parcel, all in train


def test_date_views_average_the_full_series_and_copies_with_dates_hidden(bench):
    accuracy = bench("accuracy")
    seen = []

    def model(batch):  # logits [N, 2]: the number of dates it was shown, and 0
        seen.append(batch["mask"].clone())
        assert not batch["ts"][~batch["mask"]].any()  # hidden dates carry no values
        return torch.stack([batch["mask"].sum(1).float(), torch.zeros(len(batch["mask"]))], 1)

    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    batch = {"mask": mask, "ts": torch.ones(2, 4, 3) * mask[..., None], "positions": mask * 5}
    generator = torch.Generator().manual_seed(0)
    assert accuracy.date_views(model, batch, 0, 0.5, generator) is None
    mean = accuracy.date_views(model, batch, 3, 0.999, generator)
    assert len(seen) == 4 and seen[0].equal(mask)
    for view in seen[1:]:  # nearly every date hidden: the first valid one stays
        assert view.equal(torch.tensor([[True, False, False, False]] * 2))
    full = torch.tensor([[3.0, 0.0], [2.0, 0.0]]).softmax(1)
    one = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).softmax(1)
    assert torch.allclose(mean, (full + 3 * one) / 4)


def test_macro_f1_averages_the_classes_the_test_split_holds(bench):
    scoring = bench("_scores")
    target = np.array([0, 0, 1, 1])
    preds = np.array([0, 2, 1, 1])  # class 2 is predicted once but never there
    result = scoring.scores(preds, target, ["a", "b", "c"])
    assert result["f1_per_class"] == {"a": pytest.approx(2 / 3, abs=1e-4), "b": 1.0, "c": None}
    assert result["f1_macro"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-4)
    summary = scoring.summarise([result | {"fit_s": 1.0, "params": 3}] * 2)
    assert summary["f1_per_class"]["c"] is None and summary["f1_macro_sd"] == 0
    assert "| — | 1 | 3 |" in scoring.table("x", {"m": summary})
