"""Every block round-trips through YAML (class_path / init_args) and through a checkpoint."""

from __future__ import annotations

import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from torch import nn

from cmap.cli import build
from cmap.main import main
from cmap.tasks.classifier import Classifier
from tests.helpers import REPO, batch

M = "cmap.models."
POSITIONS = {
    "class_path": M + "embeddings.positions.PositionalEncoding",
    "init_args": {"d_model": 16},
}
PIXELS = {
    "class_path": M + "embeddings.bands.PixelEncoding",
    "init_args": {"in_bands": 3, "widths": [16]},
}
BLOCKS = [
    PIXELS,
    {
        "class_path": M + "embeddings.bands.PatchBandsEncoding",
        "init_args": {
            "in_bands": 5,
            "widths": [4],
            "kernels": [3],
            "out_dim": 16,
            "norm": "none",
        },
    },
    POSITIONS,
    {
        "class_path": M + "embeddings.positions.LearnedPositionalEncoding",
        "init_args": {"d_model": 16, "max_len": 50},
    },
    {
        "class_path": M + "embeddings.positions.ThermalPositionalEncoding",
        "init_args": {"d_model": 16, "scale": 5.0},
    },
    {
        "class_path": M + "encoders.transformer.TransformerEncoder",
        "init_args": {
            "position_encoder": POSITIONS,
            "bands_encoder": PIXELS,
            "d_model": 16,
            "n_heads": 2,
            "n_layers": 1,
            "norm_first": True,
        },
    },
    {
        "class_path": M + "encoders.exchanger.ExchangerEncoder",
        "init_args": {
            "position_encoder": POSITIONS,
            "bands_encoder": PIXELS,
            "d_model": 16,
            "n_tokens": 2,
            "n_heads": 2,
            "n_layers": 1,
        },
    },
    {
        "class_path": M + "encoders.ltae.LTAEEncoder",
        "init_args": {
            "position_encoder": POSITIONS,
            "bands_encoder": PIXELS,
            "d_model": 16,
            "n_heads": 4,
            "d_k": 4,
            "widths": [8],
        },
    },
    {
        "class_path": M + "decoders.MulticlassClassification",
        "init_args": {"in_dim": 16, "num_classes": 3},
    },
    {
        "class_path": M + "decoders.AttentionClassification",
        "init_args": {"in_dim": 16, "num_classes": 3, "dropout_p": 0.2},
    },
    {
        "class_path": M + "decoders.Reconstruction",
        "init_args": {"in_dim": 16, "out_bands": 3, "widths": [8]},
    },
    {"class_path": M + "losses.FocalLoss", "init_args": {"gamma": 1.5, "alpha": [1.0, 2.0]}},
    {"class_path": M + "losses.FocalLoss", "init_args": {"alpha": 0.25, "reduction": "sum"}},
    {"class_path": M + "losses.MaskedMSE", "init_args": {"reduction": "none"}},
]


@pytest.mark.parametrize("spec", BLOCKS, ids=lambda s: s["class_path"].rsplit(".", 1)[1])
def test_block_round_trips_through_yaml(spec):
    parser = ArgumentParser()
    parser.add_argument("--block", type=nn.Module)
    config = parser.parse_string(yaml.safe_dump({"block": spec}))
    block = parser.instantiate(config).block
    assert type(block).__module__ + "." + type(block).__name__ == spec["class_path"]
    # What jsonargparse writes back (all defaults filled in) parses to the same config.
    dumped = parser.dump(config)
    again = parser.parse_string(dumped)
    assert parser.dump(again) == dumped
    rebuilt = parser.instantiate(again).block
    rebuilt.load_state_dict(block.state_dict())  # same parameter names and shapes
    for key, value in block.state_dict().items():
        torch.testing.assert_close(rebuilt.state_dict()[key], value)


MODEL_CONFIGS = sorted((REPO / "configs" / "models").glob("*.yaml"))


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_model_config_trains_and_reloads_from_checkpoint(config, synthetic_root, tmp_path):
    cli = build(
        [
            "--config",
            str(REPO / "configs" / "demo.yaml"),
            "--model",
            str(config),
            "--data.init_args.root",
            str(synthetic_root),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ],
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    path = next(tmp_path.rglob("last.ckpt"))
    reloaded = Classifier.load_from_checkpoint(path).eval()
    assert type(reloaded.encoder) is type(cli.model.encoder)
    ts, positions, mask = batch(c=10)
    data = {"ts": ts, "positions": positions, "mask": mask}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(data), cli.model.eval()(data))


TRAINER_CONFIGS = sorted((REPO / "configs" / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("config", TRAINER_CONFIGS, ids=lambda p: p.stem)
def test_trainer_configs_parse(config, capsys, monkeypatch):
    """Parsing only: no GPU is needed to check a GPU config."""
    monkeypatch.chdir(REPO)
    demo = REPO / "configs" / "demo.yaml"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(demo), "--trainer", str(config), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)["trainer"]
    for key, value in yaml.safe_load(config.read_text()).items():
        assert printed[key] == value
