"""Classifier task: metrics, class weights, schedule, encoder weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from cmap.cli import build
from cmap.models.decoders import MulticlassClassification
from cmap.models.losses import FocalLoss
from cmap.tasks.class_weights import balanced_weights
from cmap.tasks.classifier import Classifier, _metrics
from cmap.tasks.optim import AdamW, WarmupExponentialLR, warmup_exponential
from tests.helpers import REPO, batch, encoder


def classifier(**kwargs):
    return Classifier(
        encoder(),
        MulticlassClassification(16, 3),
        FocalLoss(2.0),
        classes=["other", "wheat", "maize"],
        **kwargs,
    )


def test_metrics_match_a_hand_computed_example():
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    target = torch.tensor([0, 1, 1, 1, 2, 0])
    # Confusion (true x pred): [[1, 0, 1], [1, 2, 0], [0, 0, 1]]; F1 per class 1/2, 4/5, 2/3.
    scores = _metrics(3)(preds, target)
    assert scores.pop("confusion").tolist() == [[1, 0, 1], [1, 2, 0], [0, 0, 1]]
    scores = {k: float(v) for k, v in scores.items()}
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert scores["f1_weighted"] == pytest.approx((2 * 1 / 2 + 3 * 4 / 5 + 1 * 2 / 3) / 6)
    # kappa = (po - pe) / (1 - pe), po = 4/6, pe = (2*2 + 3*2 + 1*2) / 36
    assert scores["kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))


def test_class_weights_by_name_reach_the_criterion():
    model = classifier(classes_weights={"maize": 3.0, "other": 0.5})
    assert model.criterion.weight.tolist() == [0.5, 1.0, 3.0]
    with pytest.raises(ValueError, match=r"unknown class\(es\) \['rye'\]"):
        classifier(classes_weights={"rye": 2.0, "maize": 3.0})
    assert classifier(classes_weights={"rye": 2.0, "oats": 1.0}).criterion.weight is None
    with pytest.raises(ValueError, match="decoder has 4 outputs but 3 classes"):
        Classifier(encoder(), MulticlassClassification(16, 4), FocalLoss(), ["a", "b", "c"])


def test_forward_and_predict_step_shapes():
    model = classifier().eval()
    ts, positions, mask = batch()
    data = {
        "ts": ts,
        "positions": positions,
        "mask": mask,
        "index": torch.arange(4),
        "season": torch.full((4,), 2021),
    }
    out = model.predict_step(data, 0)
    assert out["probabilities"].shape == (4, 3)
    torch.testing.assert_close(out["probabilities"].sum(-1), torch.ones(4))
    assert out["class"].tolist() == out["probabilities"].argmax(-1).tolist()


def test_learning_rate_schedule():
    lrs = [warmup_exponential(e, 1e-5, 1e-3, 3, 0.5) for e in range(6)]
    assert lrs[:3] == pytest.approx([1e-5 + 0.99e-3 / 3, 1e-5 + 2 * 0.99e-3 / 3, 1e-3])
    assert lrs[3:] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert warmup_exponential(100, 1e-5, 1e-3, 3, 0.5) == 1e-5


def test_schedule_scales_every_group_by_its_own_rate():
    """A group at a tenth of the optimizer's rate follows the same curve, a tenth as high."""
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = AdamW([{"params": [weights[0]]}, {"params": [weights[1]], "lr": 1e-4}], lr=1e-3)
    schedule = WarmupExponentialLR(optimizer, min_lr=1e-5, warmup_epochs=3, decay=0.5)
    seen = []
    for _ in range(6):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    expected = [warmup_exponential(e, 1e-5, 1e-3, 3, 0.5) for e in range(6)]
    assert [head for head, _ in seen] == pytest.approx(expected)
    assert [encoder for _, encoder in seen] == pytest.approx([lr / 10 for lr in expected])


def test_encoder_weights_are_loaded_and_checked(tmp_path):
    source = classifier()
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.encoder.state_dict().items()}, str(path))
    model = classifier(encoder_weights_path=str(path))
    model.start_from_pretrained()  # what fitting does first
    for key, value in source.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[key], value)
    save_file({"embedding.bands_encoder.mlp.0.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(
        ValueError, match=r"do not fit the configured encoder .*file \(2, 2\) vs model \(8, 3\)"
    ):
        classifier(encoder_weights_path=str(path)).start_from_pretrained()


def test_head_width_must_match_the_encoder():
    with pytest.raises(
        ValueError, match=r"expects in_dim=32 features but the encoder .* produces 16"
    ):
        Classifier(encoder(), MulticlassClassification(32, 3), FocalLoss(), ["a", "b", "c"])


def test_compile_option_compiles_the_encoder_in_place():
    """With `compile`, the encoder's calls go through torch.compile (its layers run while
    the compiler traces them); without it, never. Weights and state keys do not change."""
    traced = []

    def record(module, args):
        traced.append(torch.compiler.is_compiling())

    ts, positions, mask = batch()
    for compile_encoder in (True, False):
        model = classifier(compile=compile_encoder).eval()
        keys = list(model.state_dict())
        model.configure_model()
        assert list(model.state_dict()) == keys  # checkpoints keep their keys
        handle = model.encoder.layers[0].register_forward_pre_hook(record)
        with torch.no_grad():
            model({"ts": ts, "positions": positions, "mask": mask})
        handle.remove()
        assert traced.pop() is compile_encoder


def test_balanced_weights_follow_the_training_counts():
    # n = 60, K = 3: sqrt(60 / (3 * 40)), sqrt(60 / (3 * 15)), sqrt(60 / (3 * 5)); absent -> 1
    torch.testing.assert_close(
        balanced_weights([40, 15, 5, 0]),
        torch.tensor([0.5**0.5, (4 / 3) ** 0.5, 2.0, 1.0]),
    )


def test_balanced_class_weights_are_set_at_fit_and_kept_in_the_checkpoint(tmp_path, synthetic_root):
    cli = build(
        [
            *("--config", str(REPO / "configs" / "demo.yaml")),
            *("--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"),
            *("--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1"),
            *("--trainer.logger.init_args.save_dir", str(tmp_path)),
            *(
                "--model.init_args.classes_weights",
                "balanced",
                "--data.init_args.batch_size",
                "auto",
            ),
            *("--trainer.enable_progress_bar", "false"),
        ]
    )
    assert cli.model.criterion.weight is None
    cli.trainer.fit(cli.model, cli.datamodule)
    data = cli.datamodule
    counts = data.class_counts("train")
    expected = balanced_weights([counts[c] for c in data.classes])
    torch.testing.assert_close(cli.model.criterion.weight, expected)
    assert data.batch_size == 16  # "auto": len(train) / 24 < 32
    restored = Classifier.load_from_checkpoint(cli.trainer.checkpoint_callback.best_model_path)
    torch.testing.assert_close(restored.criterion.weight, expected)


def fit_briefly(tmp_path, root, *extra):
    cli = build([
        *("--config", str(REPO / "configs" / "classifier.yaml")),
        *("--data.init_args.root", str(root), "--trainer.max_epochs", "2"),
        *("--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
        *("--model.init_args.log_figures", "false", "--trainer.enable_progress_bar", "false"),
        *extra,
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


def test_logit_adjustment_prior_is_set_at_fit_and_kept_in_the_checkpoint(tmp_path, synthetic_root):
    adjust = "--model.init_args.criterion.init_args.logit_adjustment"
    cli = fit_briefly(tmp_path, synthetic_root, adjust, "1.0")
    counts = cli.datamodule.class_counts("train")
    n = torch.tensor([counts[c] + 1.0 for c in cli.datamodule.classes])
    torch.testing.assert_close(cli.model.criterion.prior, n / n.sum())
    restored = Classifier.load_from_checkpoint(cli.trainer.checkpoint_callback.best_model_path)
    torch.testing.assert_close(restored.criterion.prior, n / n.sum())


def test_weight_averaging_keeps_the_class_weights_computed_at_fit(tmp_path, synthetic_root):
    """EMA copies the model before training starts; the balanced weights come later."""
    ema = "--trainer.callbacks+=pytorch_lightning.callbacks.EMAWeightAveraging"
    cli = fit_briefly(tmp_path, synthetic_root, ema, "--trainer.callbacks.decay", "0.9")
    weight = cli.model.criterion.weight
    assert weight is not None and len(weight) == len(cli.datamodule.classes)
    restored = Classifier.load_from_checkpoint(cli.trainer.checkpoint_callback.best_model_path)
    torch.testing.assert_close(restored.criterion.weight, weight)


def test_output_prior_is_the_mean_validation_probability_and_kept(tmp_path, synthetic_root):
    cli = fit_briefly(tmp_path, synthetic_root, "--trainer.limit_val_batches", "1.0")  # every batch
    model = cli.model.eval()
    with torch.no_grad():
        batches = cli.datamodule.val_dataloader()
        expected = torch.cat([model(batch).softmax(-1) for batch in batches]).mean(0)
    torch.testing.assert_close(model.output_prior, expected, atol=1e-5, rtol=0)
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    restored = Classifier.load_from_checkpoint(last)
    torch.testing.assert_close(restored.output_prior, expected, atol=1e-5, rtol=0)
    old = torch.load(last, weights_only=False)  # a checkpoint from before output priors
    del old["state_dict"]["output_prior"]
    torch.save(old, tmp_path / "old.ckpt")
    assert not Classifier.load_from_checkpoint(tmp_path / "old.ckpt").output_prior.any()
