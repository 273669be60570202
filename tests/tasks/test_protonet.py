"""ProtoNet: episodes from a batch, prototype logits, training from the CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cmap.callbacks import FewShotEvaluation
from cmap.cli import build
from cmap.errors import ConfigError
from cmap.io.checkpoints import encoder_from_checkpoint
from cmap.tasks import ProtoNet
from cmap.tasks.protonet import episode_of, prototype_logits
from tests.helpers import REPO, encoder


def test_an_episode_takes_k_support_series_of_every_class_with_more():
    labels = torch.tensor([2, 0, 2, 1, 0, 2, -1, 0, 2, 3, 3, 3])
    support, support_way, query, query_way = episode_of(labels, 2, torch.Generator().manual_seed(0))
    ways = sorted({int(labels[i]) for i in support})
    assert ways == [0, 2, 3]  # class 1 has one series, -1 is unlabelled
    assert len(support) == 6 and torch.bincount(support_way).tolist() == [2, 2, 2]
    assert not set(support.tolist()) & set(query.tolist())
    assert sorted(support.tolist() + query.tolist()) == [
        i for i, y in enumerate(labels) if y in (0, 2, 3)
    ]
    way_class = {int(w): int(labels[i]) for i, w in zip(support, support_way)}
    assert all(way_class[int(w)] == int(labels[i]) for i, w in zip(query, query_way))
    assert episode_of(torch.tensor([0, 0, 0, 1]), 2) is None  # one class qualifies


def test_prototype_logits_are_minus_squared_distances_to_class_means():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    ways = torch.tensor([0, 0, 1])  # means (1, 0) and (0, 4)
    logits = prototype_logits(support, ways, torch.tensor([[1.0, 1.0]]), 2)
    torch.testing.assert_close(logits, torch.tensor([[-1.0, -10.0]]))
    loss = F.cross_entropy(logits, torch.tensor([0]))
    torch.testing.assert_close(loss, torch.log(1 + torch.exp(torch.tensor(-9.0))))


def test_protonet_trains_from_the_cli_and_its_encoder_is_extracted(tmp_path, synthetic_root):
    cli = build([
        *("--config", str(REPO / "configs" / "protonet.yaml")),
        *("--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "2"),
        *("--data.init_args.batch_size", "64", "--model.init_args.k_shot", "2"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
        *("--trainer.enable_progress_bar", "false"),
    ])  # fmt: skip
    (fewshot,) = [c for c in cli.trainer.callbacks if isinstance(c, FewShotEvaluation)]
    fewshot.k_shot, fewshot.episodes = [2], 20  # the demo's val split is small
    cli.trainer.checkpoint_callback.monitor = "fewshot/2shot_f1_macro"
    cli.trainer.fit(cli.model, cli.datamodule)
    assert 0 < float(cli.trainer.callback_metrics["fewshot/2shot_f1_macro"]) <= 1
    metrics = cli.trainer.callback_metrics
    assert 0 < float(metrics["val/episode_accuracy"]) <= 1 and float(metrics["val/ways"]) >= 2
    assert torch.isfinite(metrics["train/loss_epoch"])
    best = tmp_path / "protonet" / "version_0" / "checkpoints" / "best.ckpt"
    tensors, spec = encoder_from_checkpoint(best)
    assert set(tensors) == set(cli.model.encoder.state_dict())


def test_protonet_refuses_unlabelled_series_and_bad_shots(tmp_path, synthetic_root):
    with pytest.raises(ConfigError, match="k_shot >= 1"):
        ProtoNet(encoder(), k_shot=0)
    cli = build([
        *("--config", str(REPO / "configs" / "protonet.yaml")),
        *("--data.init_args.root", str(synthetic_root), "--data.init_args.labelled", "false"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
    ])  # fmt: skip
    with pytest.raises(ConfigError, match="configs/contrastive.yaml"):
        cli.trainer.fit(cli.model, cli.datamodule)


def test_protonet_says_when_no_batch_makes_an_episode(tmp_path, synthetic_root):
    cli = build([
        *("--config", str(REPO / "configs" / "protonet.yaml")),
        *("--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"),
        *("--model.init_args.k_shot", "50"),  # no class has 51 series in a batch
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
        *("--trainer.enable_progress_bar", "false"),
    ])  # fmt: skip
    why = r"no training batch of epoch 0 held two classes with more than k_shot \(50\)"
    with pytest.raises(ConfigError, match=why):
        cli.trainer.fit(cli.model, cli.datamodule)
