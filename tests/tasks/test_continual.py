"""Continual season updates: the replay buffer (reservoir), starting from last season's
classifier with classes matched by name, and learning without forgetting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmap.cli import build
from cmap.data.series.replay import Replay, reservoir, seasons_to_read, training_rows
from cmap.data.series.table import SeriesTable
from cmap.errors import ConfigError
from cmap.models.decoders import MulticlassClassification
from cmap.models.losses import FocalLoss
from cmap.tasks import Classifier, Distillation
from cmap.tasks.continual import load_previous
from tests.helpers import REPO, batch, encoder


def test_reservoir_is_bounded_seeded_and_uniform():
    held = reservoir(100, 10, seed=4)
    assert len(held) == 10 and np.all(np.diff(held) > 0) and held.max() < 100
    assert np.array_equal(held, reservoir(100, 10, seed=4))
    assert not np.array_equal(held, reservoir(100, 10, seed=5))
    assert np.array_equal(reservoir(7, 10, seed=0), np.arange(7))  # a short stream: all of it
    counts = np.zeros(20)
    for seed in range(3000):
        counts[reservoir(20, 5, seed)] += 1
    np.testing.assert_allclose(counts / 3000, 0.25, atol=0.035)  # each item: size / n


def test_reservoir_is_the_buffer_of_a_stream_seen_item_by_item():
    rng, buffer, size = np.random.default_rng(9), [], 4
    slots = rng.integers(0, np.arange(size + 1, 31))
    for i in range(30):  # algorithm R, one item at a time, with the same draws
        if i < size:
            buffer.append(i)
        elif slots[i - size] < size:
            buffer[slots[i - size]] = i
    assert reservoir(30, size, seed=9).tolist() == sorted(buffer)


def table(seasons, labels):
    n = len(seasons)
    return SeriesTable(
        np.zeros((n, 1), np.float32), np.zeros(n, np.int32), np.arange(n), np.ones(n, np.int64),
        np.zeros(n, np.int32), np.array(seasons, np.int32), np.array(labels), np.arange(n),
    )  # fmt: skip


def test_training_rows_keep_the_new_season_and_a_buffer_of_the_old_ones():
    seasons = [2021, 2019, 2020, 2021, 2019, 2020, 2019, 2021]
    rows = training_rows(table(seasons, [0, 1] * 4), 1.0, None, 0, Replay([2019, 2020], size=3))
    new = [0, 3, 7]
    assert set(new) <= set(rows) and len(rows) == 6
    old = sorted(set(rows) - set(new))
    stream = [1, 4, 6, 2, 5]  # 2019's rows, then 2020's
    assert old == sorted(stream[i] for i in reservoir(5, 3, 0))
    assert training_rows(table(seasons, [0] * 8), 1.0, None, 0, None).tolist() == list(range(8))


def test_replayed_seasons_must_differ_from_the_new_ones():
    replay = Replay([2019], size=10)
    assert seasons_to_read([2020], replay, "train") == [2020, 2019]
    assert seasons_to_read([2020], replay, "val") == [2020]  # only training replays
    for new in (None, [2019, 2020]):
        with pytest.raises(ConfigError, match="new season"):
            seasons_to_read(new, replay, "train")
    with pytest.raises(ConfigError, match="size"):
        Replay([2019], size=0)


def classifier(classes, **kwargs):
    return Classifier(
        encoder(), MulticlassClassification(16, len(classes)), FocalLoss(), classes, **kwargs
    )


def test_init_from_matches_the_head_rows_by_class_name(tmp_path):
    torch.manual_seed(0)
    old = classifier(["other", "wheat", "maize"])
    torch.save({"state_dict": old.state_dict(), "hyper_parameters": {"classes": old.classes}},
               tmp_path / "last.ckpt")  # fmt: skip
    new = classifier(["maize", "rapeseed", "other"])  # rapeseed is new, wheat dropped
    fresh = new.decoder.linear.weight[1].detach().clone()
    known = load_previous(new, tmp_path / "last.ckpt")
    assert known == [2, 0]  # old order: other, maize -> their indices in the new classes
    for a, b in zip(old.encoder.state_dict().values(), new.encoder.state_dict().values()):
        assert torch.equal(a, b)
    w_old, w_new = old.decoder.linear.weight, new.decoder.linear.weight
    assert torch.equal(w_new[0], w_old[2]) and torch.equal(w_new[2], w_old[0])
    assert torch.equal(new.decoder.linear.bias[0], old.decoder.linear.bias[2])
    assert torch.equal(w_new[1], fresh)  # the new class keeps its fresh row
    with pytest.raises(Exception, match="checkpoint not found"):
        load_previous(new, tmp_path / "none.ckpt")


def test_distillation_is_zero_at_the_start_and_the_tempered_kl_after():
    torch.manual_seed(0)
    model = classifier(["a", "b", "c"])
    term = Distillation(weight=2.0, temperature=3.0)
    term.remember(model, known=[0, 2])
    inputs = batch(n=4, t=6, c=3)
    mask = inputs[2]
    model.eval()  # the teacher is always in eval mode (no dropout)
    logits = model({"ts": inputs[0], "positions": inputs[1], "mask": mask})
    assert float(term(model, inputs, mask, None, logits.detach())) == pytest.approx(0, abs=1e-6)
    shifted = logits + torch.tensor([1.0, 0.0, -1.0])
    teacher = torch.softmax(logits[:, [0, 2]] / 3, -1)
    student = torch.softmax(shifted[:, [0, 2]] / 3, -1)
    kl = (teacher * (teacher / student).log()).sum(-1).mean()
    value = term(model, inputs, mask, None, shifted.detach())
    assert float(value) == pytest.approx(2.0 * 9 * float(kl), rel=1e-5)
    assert all(not p.requires_grad for p in term.teacher[0].parameters())
    assert "teacher" not in [n.split(".")[0] for n, _ in model.named_parameters()]


def test_distillation_needs_a_model_to_keep():
    with pytest.raises(ConfigError, match="init_from"):
        classifier(["a", "b", "c"], distillation=Distillation())


def test_a_season_update_from_the_command_line(tmp_path, synthetic_root):
    def fit(*extra):
        cli = build([
            *("--config", str(REPO / "configs" / "classifier.yaml")),
            *("--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"),
            *("--trainer.logger.init_args.save_dir", str(tmp_path)),
            *("--model.init_args.log_figures", "false", "--trainer.enable_progress_bar", "false"),
            *extra,
        ])  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        return cli

    first = fit("--data.init_args.seasons", "[2020]")
    last = first.trainer.checkpoint_callback.best_model_path
    alone = len(first.datamodule.datasets["train"])
    second = fit(
        *("--data.init_args.seasons", "[2021]", "--model.init_args.init_from", last),
        *("--model.init_args.distillation", "Distillation"),
        *("--data.init_args.replay", "Replay", "--data.init_args.replay.seasons", "[2020]"),
        *("--data.init_args.replay.size", "10"),
    )
    train = second.datamodule.datasets["train"].table
    assert sorted(set(train.seasons.tolist())) == [2020, 2021]
    assert int((train.seasons == 2020).sum()) == 10 and alone > 10
    saved = torch.load(second.trainer.checkpoint_callback.best_model_path, weights_only=False)
    assert not any("teacher" in k for k in saved["state_dict"])
    assert second.model.distillation.teacher is not None
