"""Few-shot evaluation: episodes, the prototype classifier, the callback and the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cmap.cli import build
from cmap.commands import extract
from cmap.errors import ConfigError, OutputExistsError
from cmap.fewshot import evaluate_episodes, nearest_mean, prototype_predict, sample_episodes
from cmap.fewshot.command import fewshot
from cmap.fewshot.episodes import _macro_f1
from tests.helpers import DEMO_CUBE, REPO

LABELS = np.array([0] * 6 + [1] * 4 + [2] * 2 + [-1] * 3 + [3] * 8)


def test_episodes_are_seeded_disjoint_and_draw_eligible_classes_only():
    episodes = sample_episodes(LABELS, k_shot=2, n_way=2, n_query=3, episodes=50, seed=4)
    again = sample_episodes(LABELS, k_shot=2, n_way=2, n_query=3, episodes=50, seed=4)
    assert all(np.array_equal(a.support, b.support) for a, b in zip(episodes, again))
    assert any(
        not np.array_equal(a.query, b.query)
        for a, b in zip(episodes, sample_episodes(LABELS, 2, 2, 3, 50, seed=5))
    )
    seen = set()
    for e in episodes:
        assert len(e.classes) == 2 and len(e.support) == 4
        assert not set(e.support) & set(e.query)
        assert np.array_equal(LABELS[e.support], e.classes[e.support_labels])
        assert np.array_equal(LABELS[e.query], e.classes[e.query_labels])
        assert np.bincount(e.query_labels).max() <= 3
        seen |= set(e.classes.tolist())
    assert seen == {0, 1, 3}  # class 2 has only 2 series: none left to query; -1 never drawn
    every = sample_episodes(LABELS, k_shot=1, episodes=3)  # n_way None: every eligible class
    assert all(e.classes.tolist() == [0, 1, 2, 3] for e in every)
    with pytest.raises(ConfigError, match=r"4-way 5-shot episodes need 4 classes with more than 5"):
        sample_episodes(LABELS, k_shot=5, n_way=4)
    with pytest.raises(ConfigError, match=r"all-class 10-shot episodes need 2 classes with more"):
        sample_episodes(LABELS, k_shot=10)


def test_prototype_classifier_on_a_hand_made_case():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0]])
    labels = torch.tensor([0, 0, 1, 1])  # means (1, 0) and (10, 11)
    query = torch.tensor([[1.0, 1.0], [6.0, 6.0], [5.0, 5.0], [9.0, 20.0]])
    # (6, 6): 7.07 from (1, 0), 6.40 from (10, 11); (5, 5): 6.40 vs 7.81
    assert prototype_predict(support, labels, query, 2).tolist() == [0, 1, 0, 1]


def test_episode_scores_macro_f1_and_confidence_interval():
    pred, truth = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    assert _macro_f1(pred, truth, 3) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    labels = np.repeat([0, 1, 2], 20)
    separable = torch.tensor(np.eye(3)[labels] * 5 + 0.01 * np.arange(60)[:, None])
    drawn = sample_episodes(labels, k_shot=5, episodes=20, seed=0)
    scores = evaluate_episodes(separable, drawn)
    assert scores["accuracy"] == 1 and scores["f1_macro"] == 1 and scores["accuracy_ci95"] == 0
    assert (scores["n_way"], scores["k_shot"], scores["episodes"]) == (3, 5, 20)
    noisy = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    scores = evaluate_episodes(noisy, drawn, centre=False)
    accuracies = []
    for e in drawn:
        pred = prototype_predict(
            noisy.double()[e.support],
            torch.from_numpy(e.support_labels),
            noisy.double()[e.query],
            3,
        )
        accuracies.append(float((pred.numpy() == e.query_labels).mean()))
    assert scores["accuracy"] == pytest.approx(np.mean(accuracies))
    half = 1.96 * np.std(accuracies, ddof=1) / math.sqrt(20)
    assert scores["accuracy_ci95"] == pytest.approx(half) and half > 0


def pretrain(tmp_path, root, *extra):
    cli = build([
        *("--config", str(REPO / "configs" / "contrastive.yaml")),
        *("--data.init_args.root", str(root), "--trainer.max_epochs", "2"),
        *("--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
        *("--trainer.enable_progress_bar", "false", "--model.init_args.log_figures", "false"),
        *extra,
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


FEWSHOT = "--trainer.callbacks+=cmap.callbacks.FewShotEvaluation"


def test_the_callback_scores_pretraining_on_the_labels_of_its_unlabelled_samples(
    tmp_path, synthetic_root
):
    cli = pretrain(tmp_path, synthetic_root, FEWSHOT, "--trainer.callbacks.k_shot", "[2]")
    assert cli.datamodule.labelled is False
    metrics = cli.trainer.callback_metrics
    assert 0 < float(metrics["fewshot/2shot_f1_macro"]) <= 1
    assert 0 < float(metrics["fewshot/2shot_accuracy"]) <= 1
    assert float(metrics["fewshot/2shot_accuracy_ci95"]) > 0
    cube = [
        "--data",
        "cmap.data.CubeDataModule",
        "--data.cube",
        str(DEMO_CUBE),
        "--data.window_size",
        "16",
    ]
    with pytest.raises(ConfigError, match="give `root`"):
        pretrain(tmp_path / "cube", synthetic_root, *cube, FEWSHOT)


def test_the_command_scores_a_checkpoint_and_its_extracted_encoder_alike(
    tmp_path, synthetic_root, capsys
):
    pretrain(tmp_path, synthetic_root)
    run = tmp_path / "contrastive" / "version_0"
    extract(run, tmp_path / "encoder")
    out = tmp_path / "scores.json"
    fewshot(run, synthetic_root, split="val", k_shot=[2], episodes=30, output=out)
    fewshot(tmp_path / "encoder", synthetic_root, split="val", k_shot=[2], episodes=30)
    printed = [line for line in capsys.readouterr().out.splitlines() if "2-shot" in line]
    assert len(printed) == 2 and printed[0] == printed[1]
    scores = json.loads(out.read_text())["2shot"]
    assert scores["episodes"] == 30 and 0 < scores["f1_macro"] <= 1
    assert f"macro-F1 {scores['f1_macro']:.3f}" in printed[0]
    with pytest.raises(OutputExistsError, match="already exists"):
        fewshot(run, synthetic_root, split="val", k_shot=[2], output=out)


def test_nearest_mean_maps_class_ids_and_never_predicts_an_absent_class():
    support = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    labels = np.array([1, 1, 4, 4])  # classes 0, 2, 3 have no support
    query = torch.tensor([[1.0, 0.5], [9.0, 0.5], [6.0, 3.0]])
    assert nearest_mean(support, labels, query, 5).tolist() == [1, 4, 4]
