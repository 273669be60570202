"""Mixup and manifold mixup: resampling on irregular dates, the mixed loss, the CLI option."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmap.cli import build
from cmap.errors import ConfigError
from cmap.models.decoders import AttentionClassification, MulticlassClassification
from cmap.models.losses import FocalLoss
from cmap.tasks import Classifier, Mixup
from cmap.tasks.mixup import resample
from tests.helpers import REPO, encoder


def test_resample_interpolates_valid_dates_in_time_and_holds_the_ends():
    # series 0: valid on days 10, 20, 40 (stored out of order, one masked date of junk)
    ts = torch.tensor([[[2.0], [99.0], [1.0], [4.0]], [[7.0], [0.0], [0.0], [0.0]]])
    days = torch.tensor([[20, 30, 10, 40], [100, 0, 0, 0]])
    mask = torch.tensor([[True, False, True, True], [True, False, False, False]])
    at = torch.tensor([[0, 15, 20, 30, 50], [0, 100, 200, 5, 5]])
    out = resample(ts, days, mask, at)
    assert out.shape == (2, 5, 1)
    assert out[0, :, 0].tolist() == pytest.approx([1.0, 1.5, 2.0, 3.0, 4.0])
    assert out[1, :, 0].tolist() == [7.0] * 5  # one valid date: its values everywhere


def test_input_mixup_mixes_on_the_first_series_dates_and_keeps_its_mask():
    ts = torch.tensor(
        [[[1.0, 10.0], [3.0, 30.0], [0.0, 0.0]], [[5.0, 50.0], [9.0, 90.0], [7.0, 70.0]]]
    )
    days = torch.tensor([[0, 20, 0], [0, 10, 40]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    batch = {"ts": ts, "days": days, "positions": days, "mask": mask, "class": torch.tensor([0, 1])}
    perm = torch.tensor([1, 0])
    mixed = Mixup(space="input").inputs(batch, (0.75, perm))
    # series 1 at series 0's days 0 and 20: 5 and 9 + (7 - 9) / 3 = 25 / 3 (band 0)
    expected0 = 0.75 * torch.tensor([[1.0, 10.0], [3.0, 30.0]]) + 0.25 * torch.tensor(
        [[5.0, 50.0], [25 / 3, 250 / 3]]
    )
    torch.testing.assert_close(mixed["ts"][0, :2], expected0)
    assert mixed["ts"][0, 2].tolist() == [0.0, 0.0]  # padding stays zero
    # series 0 at series 1's days 0, 10, 40: 1, 2, 3 (held after its last date)
    torch.testing.assert_close(
        mixed["ts"][1, :, 0],
        0.75 * torch.tensor([5.0, 9.0, 7.0]) + 0.25 * torch.tensor([1.0, 2.0, 3.0]),
    )
    assert mixed["mask"] is mask and mixed["positions"] is days
    assert batch["ts"] is ts and ts[0, 0, 0] == 1.0  # the batch itself is untouched
    assert Mixup(space="features").inputs(batch, (0.75, perm)) is batch
    assert Mixup(space="input").inputs(batch, None) is batch


@pytest.mark.parametrize("criterion", [nn.CrossEntropyLoss(), FocalLoss(1.0)])
def test_mixed_loss_is_the_lambda_weighted_loss_of_both_targets(criterion):
    criterion.weight = torch.tensor([1.0, 2.0, 0.5])
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    target, perm = torch.tensor([0, 1, 2, 1]), torch.tensor([2, 3, 0, 1])
    loss, scored = Mixup.loss(criterion, logits, target, (0.3, perm))
    expected = 0.3 * criterion(logits, target) + 0.7 * criterion(logits, target[perm])
    torch.testing.assert_close(loss, expected)
    assert scored.tolist() == target[perm].tolist()  # 1 - lambda weighs most
    assert Mixup.loss(criterion, logits, target, (0.6, perm))[1] is target
    torch.testing.assert_close(
        Mixup.loss(criterion, logits, target, (1.0, perm))[0], criterion(logits, target)
    )


@pytest.mark.parametrize("head_type", [MulticlassClassification, AttentionClassification])
def test_feature_mixup_mixes_the_pooled_features_before_the_linear_layer(head_type):
    head = head_type(4, 3).eval()
    features = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [True] * 3 + [False] * 2])
    perm = torch.tensor([2, 0, 1])
    pooled = head.pool(features, mask)
    logits = Mixup(space="features").head(head, features, mask, (0.4, perm))
    torch.testing.assert_close(logits, head.linear(0.4 * pooled + 0.6 * pooled[perm]))
    unmixed = Mixup(space="features").head(head, features, mask, (1.0, perm))
    torch.testing.assert_close(unmixed, head(features, mask))
    torch.testing.assert_close(
        Mixup(space="input").head(head, features, mask, (0.4, perm)), head(features, mask)
    )


def test_draws_follow_the_global_seed_and_the_mixing_probability():
    mixup = Mixup(alpha=0.4)
    torch.manual_seed(3)
    first = [mixup.draw(8, torch.device("cpu")) for _ in range(3)]
    torch.manual_seed(3)
    again = [mixup.draw(8, torch.device("cpu")) for _ in range(3)]
    for (lam, perm), (lam2, perm2) in zip(first, again, strict=True):
        assert 0 <= lam <= 1 and lam == lam2 and perm.tolist() == perm2.tolist()
        assert sorted(perm.tolist()) == list(range(8))
    assert mixup.draw(1, torch.device("cpu")) is None  # nothing to mix a lone series with
    torch.manual_seed(0)
    drawn = [Mixup(p=0.3).draw(8, torch.device("cpu")) for _ in range(400)]
    assert 0.2 < sum(d is not None for d in drawn) / 400 < 0.4


def test_bad_mixup_settings_are_refused():
    with pytest.raises(ConfigError, match="alpha > 0"):
        Mixup(alpha=0)
    with pytest.raises(ConfigError, match="0 < p <= 1"):
        Mixup(p=1.5)
    with pytest.raises(ConfigError, match='"input" or "features"'):
        Mixup(space="time")

    class PlainHead(nn.Module):
        num_classes = 3

        def forward(self, x, mask):
            return x[:, 0, :3]

    with pytest.raises(ConfigError, match="PlainHead has not: use space: input"):
        Classifier(encoder(), PlainHead(), FocalLoss(), ["a", "b", "c"], mixup=Mixup())
    Classifier(encoder(), PlainHead(), FocalLoss(), ["a", "b", "c"], mixup=Mixup(space="input"))


@pytest.mark.parametrize("space", ["input", "features"])
def test_classifier_trains_with_mixup_from_the_cli_and_reloads(tmp_path, synthetic_root, space):
    def fit(*extra):
        cli = build([
            *("--config", str(REPO / "configs" / "classifier.yaml")),
            *("--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"),
            *("--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"),
            *("--trainer.logger.init_args.save_dir", str(tmp_path / space / str(len(extra)))),
            *("--model.init_args.log_figures", "false", "--trainer.enable_progress_bar", "false"),
            *extra,
        ])  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        return cli

    mixed = fit("--model.init_args.mixup", "Mixup", "--model.init_args.mixup.space", space)
    plain = fit("--model.init_args.mixup", "null")  # the default config mixes features
    assert plain.model.mixup is None
    assert isinstance(mixed.model.mixup, Mixup) and mixed.model.mixup.space == space
    assert torch.isfinite(mixed.trainer.callback_metrics["train/loss_epoch"])
    weights = [m.model.decoder.linear.weight for m in (mixed, plain)]
    assert not torch.allclose(*weights)  # the same seed trained differently
    path = mixed.trainer.checkpoint_callback.best_model_path
    restored = Classifier.load_from_checkpoint(path)
    assert restored.mixup.space == space
    torch.testing.assert_close(restored.decoder.linear.weight, weights[0])
