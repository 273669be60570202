"""Masked pretraining, encoder extraction and fine-tuning from extracted weights."""

from __future__ import annotations

import functools

import pytest
import torch
import yaml
from safetensors.torch import load_file

from cmap.cli import build
from cmap.main import main
from cmap.models.decoders import MulticlassClassification, Reconstruction
from cmap.models.losses import FocalLoss, MaskedMSE
from cmap.tasks.autoencoder import AutoEncoder
from cmap.tasks.classifier import Classifier
from cmap.tasks.masking import hidden_counts, hide_dates
from cmap.tasks.optim import AdamW
from tests.helpers import REPO, D, batch, build_encoder, encoder

PRETRAIN, FINETUNE = REPO / "configs" / "pretrain.yaml", REPO / "configs" / "finetune.yaml"
FAST = [
    "--trainer.max_epochs",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.limit_train_batches",
    "3",
    "--data.init_args.batch_size",
    "32",
]


def valid_mask(n=64, t=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = torch.arange(t)[None] < lengths[:, None]
    # valid dates scattered, not only at the front (as after date dropout)
    shuffled = torch.rand(n, t, generator=g).argsort(dim=1)
    return torch.gather(mask, 1, shuffled) | (torch.arange(t)[None] == 0)


@pytest.mark.parametrize("mode", ["random", "contiguous"])
@pytest.mark.parametrize("ratio", [0.15, 0.5, 0.9])
def test_masking_hides_only_valid_dates_in_the_requested_share(mode, ratio):
    mask = valid_mask()
    hidden = hide_dates(mask, ratio, mode, torch.Generator().manual_seed(1))
    assert not (hidden & ~mask).any()  # padded dates are never hidden
    valid = mask.sum(dim=1)
    expected = torch.round(valid.double() * ratio).long().clamp(min=1)
    expected = torch.minimum(expected, valid - 1)  # one date always stays visible
    assert torch.equal(hidden.sum(dim=1), expected)
    assert torch.equal(hidden_counts(mask, ratio), expected)
    if mode == "contiguous":  # one run of consecutive valid dates
        for row_mask, row_hidden in zip(mask, hidden):
            ranks = torch.nonzero(row_hidden[row_mask])[:, 0]
            if len(ranks):
                assert torch.equal(ranks, torch.arange(ranks[0], ranks[0] + len(ranks)))


def test_masking_draws_differ_and_repeat_with_the_seed():
    mask = valid_mask()
    a = hide_dates(mask, 0.5, "random", torch.Generator().manual_seed(1))
    b = hide_dates(mask, 0.5, "random", torch.Generator().manual_seed(1))
    c = hide_dates(mask, 0.5, "random", torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        hide_dates(mask, 1.0)


def test_masked_mse_on_a_hand_checked_example():
    prediction = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [9.0, 9.0]]])  # [1, 3, 2]
    target = torch.tensor([[[0.0, 0.0], [5.0, 5.0], [9.0, 7.0]]])
    hidden = torch.tensor([[True, False, True]])  # date 1 visible: ignored
    # errors on hidden dates: (1, 4) and (0, 4) -> mean 9 / 4
    assert MaskedMSE()(prediction, target, hidden).item() == pytest.approx(9 / 4)
    assert MaskedMSE("none")(prediction, target, hidden).tolist() == [0.5, 4.0]


def autoencoder(name="transformer", **kwargs):
    return AutoEncoder(build_encoder(name), Reconstruction(D, 3, [16]), **kwargs).eval()


@pytest.mark.parametrize("name", ["transformer", "exchanger"])
def test_reconstruction_never_sees_hidden_or_padded_values(name):
    model = autoencoder(name)
    ts, positions, mask = batch()
    hidden = hide_dates(mask, 0.5, "random", torch.Generator().manual_seed(0))
    assert hidden.any()
    data = {"ts": ts, "positions": positions, "mask": mask}
    out = model(data, hidden)
    assert out.shape == ts.shape and not out[~mask].any()
    assert out[hidden].abs().sum() > 0  # hidden dates get a reconstruction
    changed = ts.clone()
    changed[hidden | ~mask] = 123.0  # values the encoder must not use
    assert torch.allclose(model({**data, "ts": changed}, hidden), out, atol=1e-6)
    # and the loss counts hidden dates only: other targets can change freely
    loss = MaskedMSE()(out, ts, hidden)
    target = ts.clone()
    target[~hidden] = -7.0
    assert MaskedMSE()(out, target, hidden) == loss


def test_pooling_encoders_and_classification_heads_are_refused():
    with pytest.raises(ValueError, match="needs a reconstruction head"):
        AutoEncoder(encoder(), MulticlassClassification(D, 3))
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        autoencoder(mask_ratio=0.0)


def classifier(**kwargs):
    return Classifier(
        encoder(), MulticlassClassification(D, 2), FocalLoss(), classes=["a", "b"], **kwargs
    )


def training_step(model, steps=1):
    ts, positions, mask = batch()
    data = {"ts": ts, "positions": positions, "mask": mask, "class": torch.tensor([0, 1, 0, 1])}
    optimizer = model.configure_optimizers()["optimizer"]
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model._step(data, "train").backward()
        optimizer.step()


def test_a_frozen_encoder_does_not_change_but_its_head_does(monkeypatch):
    model = classifier(freeze_encoder=True)
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = model.decoder.linear.weight.clone()
    training_step(model, steps=2)
    for key, value in model.encoder.state_dict().items():  # weights and batch-norm statistics
        assert torch.equal(value, encoder_before[key]), key
    assert not torch.equal(model.decoder.linear.weight, head_before)
    assert not model.encoder.training and model.decoder.training


def test_encoder_learning_rate_factor():
    make = functools.partial(AdamW, lr=1e-3)
    optimizer = classifier(encoder_lr_factor=0.1, optimizer=make).configure_optimizers()[
        "optimizer"
    ]
    rates = {g["name"]: g["initial_lr"] for g in optimizer.param_groups}
    assert rates == pytest.approx({"encoder": 1e-4, "head": 1e-3})
    with pytest.raises(ValueError, match="encoder_lr_factor must be positive"):
        classifier(encoder_lr_factor=0)


@pytest.fixture(scope="module")
def pretrained(synthetic_root, tmp_path_factory):
    """A one-epoch `cmap fit --config configs/pretrain.yaml` on the synthetic folder (labels
    removed from a copy would be equivalent: the config ignores them)."""
    work = tmp_path_factory.mktemp("pretrain")
    args = ["--config", PRETRAIN, "--data.init_args.root", synthetic_root, *FAST]
    args += ["--trainer.logger.init_args.save_dir", work / "lightning_logs"]
    args += ["--model.init_args.figures_dir", work / "figures"]
    args += ["--model.init_args.ndvi_every_n_epochs", "1", "--trainer.max_epochs", "2"]
    cli = build([str(a) for a in args])
    cli.trainer.fit(cli.model, cli.datamodule)
    return work


def test_pretraining_logs_losses_per_band_errors_and_ndvi_figures(pretrained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    version = pretrained / "lightning_logs" / "pretrain" / "version_0"
    assert {p.name for p in (version / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    events = EventAccumulator(str(version)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_epoch", "val/loss", "val/mse", "val/mse/B04", "val/mse/B12"} <= tags
    assert len(events.Scalars("val/loss")) == 2
    # the NDVI figure at epoch 1 only, in TensorBoard and as PNG; attention of unlabelled data
    assert [e.step for e in events.Images("val/ndvi_reconstruction")] == [1]
    pngs = sorted(p.name for p in (pretrained / "figures").iterdir())
    assert pngs == ["val_attention_epoch001.png", "val_ndvi_reconstruction_epoch001.png"]
    hparams = yaml.safe_load((version / "hparams.yaml").read_text())
    assert hparams["bands"][:2] == ["B02", "B03"]
    assert hparams["decoder"]["init_args"]["out_bands"] == 10  # linked from the data


def test_extract_then_finetune_reproduces_the_encoder(pretrained, synthetic_root, tmp_path, capsys):
    checkpoint = pretrained / "lightning_logs" / "pretrain" / "version_0" / "checkpoints"
    out = tmp_path / "pretrained"
    main(["extract", str(pretrained / "lightning_logs"), "--output", str(out)])  # newest best
    assert "best.ckpt" in capsys.readouterr().out
    weights = load_file(str(out / "encoder.safetensors"))
    state = torch.load(checkpoint / "best.ckpt", weights_only=True)["state_dict"]
    expected = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    spec = yaml.safe_load((out / "encoder.yaml").read_text())
    assert spec["class_path"] == "cmap.models.TransformerEncoder"
    assert spec["init_args"]["d_model"] == 64

    # refuses to overwrite, unless asked
    before = (out / "encoder.safetensors").read_bytes()
    with pytest.raises(SystemExit):
        main(["extract", str(checkpoint / "last.ckpt"), "--output", str(out)])
    assert (
        "already exists; choose another output or pass --overwrite true" in capsys.readouterr().err
    )
    assert (out / "encoder.safetensors").read_bytes() == before
    main(["extract", str(checkpoint / "last.ckpt"), "--output", str(out), "--overwrite", "true"])

    # a Classifier built from encoder.yaml + the weights computes what the pretrained one did
    pretrained_model = AutoEncoder.load_from_checkpoint(checkpoint / "last.ckpt").eval()
    cli = build(
        [
            "--config",
            str(FINETUNE),
            "--data.init_args.root",
            str(synthetic_root),
            "--model.init_args.encoder",
            str(out / "encoder.yaml"),
            "--model.init_args.encoder_weights_path",
            str(out / "encoder.safetensors"),
            "--trainer.logger",
            "false",
        ]
    )
    cli.model.start_from_pretrained()  # what fit does first
    ts = torch.rand(5, 7, 10)
    positions = torch.arange(7)[None].repeat(5, 1) * 20
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[1, 3:] = False
    with torch.no_grad():
        expected_out = pretrained_model.encoder(ts, positions, mask)
        assert torch.equal(cli.model.encoder.eval()(ts, positions, mask), expected_out)


def test_weights_that_do_not_fit_name_the_mismatches(pretrained, tmp_path, synthetic_root, capsys):
    out = tmp_path / "w"
    main(["extract", str(pretrained / "lightning_logs"), "--output", str(out)])
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                str(FINETUNE),
                "--data.init_args.root",
                str(synthetic_root),
                "--model.init_args.encoder_weights_path",
                str(out / "encoder.safetensors"),
                "--model.init_args.encoder.init_args.n_layers",
                "1",
            ]
        )
    err = capsys.readouterr().err
    assert "weights do not fit the configured encoder" in err and "unexpected layers.1." in err


def test_extract_errors_are_one_line(tmp_path, capsys):
    torch.save({"state_dict": {"decoder.w": torch.zeros(2)}}, tmp_path / "a.ckpt")
    for target, message in [
        (tmp_path / "a.ckpt", "has no encoder weights"),
        (tmp_path / "nowhere.ckpt", "no such checkpoint file or folder"),
        (tmp_path, "a.ckpt"),  # a folder without best/last: but a.ckpt is not searched
    ]:
        with pytest.raises(SystemExit):
            main(["extract", str(target)])
        err = capsys.readouterr().err
        assert err.startswith("cmap: error: ") and "Traceback" not in err
        if target != tmp_path:
            assert message in err, err
        else:
            assert "holds no best.ckpt or last.ckpt" in err


@pytest.mark.slow
def test_the_documented_chain_runs_from_the_command_line(synthetic_root, tmp_path, run_cmap):
    """pretrain -> `cmap extract` -> finetune, as the README shows, in subprocesses."""

    def cmap(*args):
        result = run_cmap(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    data = ["--data.init_args.root", synthetic_root]
    cmap("fit", "--config", PRETRAIN, *data, *FAST)
    cmap("extract", "lightning_logs/pretrain", "--output", "pretrained")
    cmap("fit", "--config", FINETUNE, *data, *FAST)
    hparams = yaml.safe_load(
        (tmp_path / "lightning_logs/finetune/version_0/hparams.yaml").read_text()
    )
    assert hparams["encoder_weights_path"] == "pretrained/encoder.safetensors"


def test_a_fine_tuned_checkpoint_needs_no_pretrained_file(
    pretrained, synthetic_root, tmp_path, monkeypatch, capsys
):
    """The starting weights matter when training starts; the checkpoint holds all weights."""
    monkeypatch.chdir(tmp_path)
    main(["extract", str(pretrained / "lightning_logs"), "--output", "pretrained"])
    data = ["--data.init_args.root", str(synthetic_root)]
    main(["fit", "--config", str(FINETUNE), *data, *map(str, FAST)])
    assert "cmap: encoder weights loaded from pretrained/encoder.safetensors" in (
        capsys.readouterr().err
    )
    (tmp_path / "pretrained" / "encoder.safetensors").rename(tmp_path / "moved.safetensors")
    last = next(tmp_path.glob("lightning_logs/finetune/version_0/checkpoints/last.ckpt"))
    main(["test", "--config", str(FINETUNE), *data, "--ckpt_path", str(last)])
    assert "f1_macro" in capsys.readouterr().out
    model = Classifier.load_from_checkpoint(last)  # in Python too
    assert model.hparams.encoder_weights_path == "pretrained/encoder.safetensors"
