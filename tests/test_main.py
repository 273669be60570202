"""The `cmap` entry point in-process: runs without a logger and fast dev runs work."""

from __future__ import annotations

import pytest

from cmap.main import main
from tests.helpers import DEMO

SHORT = [
    "--trainer.enable_progress_bar",
    "false",
    "--model.init_args.encoder.init_args.n_layers",
    "1",
]


def fit(root, *extra):
    main(["fit", "--config", str(DEMO), "--data.init_args.root", str(root), *SHORT, *extra])


def test_fast_dev_run_trains_one_step_and_writes_nothing(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit(synthetic_root, "--trainer.fast_dev_run", "true")
    assert not (tmp_path / "lightning_logs").exists()  # Lightning's stand-in logger


def test_without_a_logger_training_runs_and_figures_go_to_figures_dir(
    synthetic_root, tmp_path, monkeypatch, capsys
):
    """`logger: false`: the learning-rate monitor is left out (said in the log), checkpoints
    are still written, and figures reach `figures_dir` when one is given."""
    monkeypatch.chdir(tmp_path)
    figures = tmp_path / "figures"
    fit(
        synthetic_root,
        *("--trainer.logger", "false", "--trainer.max_epochs", "1"),
        *("--model.init_args.figures_dir", str(figures)),
    )
    err = capsys.readouterr().err
    assert "cmap: logger: false, so learning rates are not logged" in err
    best = next(tmp_path.glob("checkpoints/epoch=0-f1=*.ckpt"))
    assert f"cmap: best checkpoint: {best} (val/f1_macro 0." in err
    drawn = sorted(p.name for p in figures.glob("*.png"))
    assert "val_confusion_matrix_epoch000.png" in drawn
    assert "train_label_distribution_epoch000.png" in drawn


def test_unknown_option_of_a_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["quicklook", "map.tif", "--colour", "x"])
    assert exit_.value.code == 2 and "colour" in capsys.readouterr().err


def test_help_names_every_command_with_what_it_does(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    commands = ("fit", "validate", "test", "predict", "extract", "fewshot", "samples", "quicklook")
    commands += ("demo", "sweep")
    for name in (*commands, "uncertainty", "smooth", "parcels", "assess", "reference", "priors"):
        described = [line for line in lines if line.split()[:1] == [name]]
        assert len(described) == 1 and len(described[0].split()) > 4, name
    assert max(len(line) for line in lines) <= 88  # one line each
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2 and "commands:" in capsys.readouterr().out


def test_model_help_takes_short_names_and_lists_cmap_blocks(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--model.help", "Classifier"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "cmap.models.TransformerEncoder" in out and "cmap.models.FocalLoss" in out
    assert "torch.nn.Linear" not in out  # not every torch module
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "known subclasses: cmap.tasks.AutoEncoder, cmap.tasks.Classifier" in out
    assert "cmap.data.SITSDataModule" in out


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_is_refused_before_anything_is_written(
    subcommand, synthetic_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([subcommand, "--config", str(DEMO), "--data.init_args.root", str(synthetic_root)])
    assert exit_.value.code == 2
    assert f"cmap: error: `cmap {subcommand}` needs a trained model" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no log folder


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("min_lr: 1.0e-05", "min_lrr: 1.0e-05"),
            "'model.init_args.lr_scheduler.init_args.min_lrr'"
            ": not an argument of cmap.tasks.WarmupExponentialLR; did you mean min_lr?",
        ),
        (("  max_epochs:", "  max_epoch:"), "'trainer.max_epoch'; did you mean max_epochs?"),
        (("trainer:", "trainr:"), "unknown key 'trainr'; did you mean trainer?"),
        (
            ("n_heads: 4", "n_head: 4"),
            "not an argument of cmap.models.TransformerEncoder; did you mean n_heads?",
        ),
    ],
)
def test_a_config_key_typo_names_the_file_the_key_and_the_closest_key(
    edit, expected, tmp_path, capsys
):
    config = tmp_path / "typo.yaml"
    text = DEMO.read_text()
    assert edit[0] in text
    config.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2
    assert err.startswith(f"cmap: error: {config}: unknown key") and expected in err
    assert len(err.splitlines()) == 1 and len(err) < 400


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (
            ["--trainer.max_epoch", "2"],
            "unknown option --trainer.max_epoch; did you mean --trainer.max_epochs?",
        ),  # no prefix matching
        (
            ["--model.init_args.encoder.init_args.n_layer", "3"],
            "model.encoder "
            "(cmap.models.TransformerEncoder): Option 'n_layer' is not accepted; did you mean "
            "n_layers?",
        ),
        (["--trainer.max_epochs", "abc"], "trainer.max_epochs: Expected a <class 'int'>"),
    ],
)
def test_a_command_line_typo_is_one_short_line(option, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(DEMO), *option])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and expected in err and len(err.splitlines()) == 1


def test_a_log_gets_one_line_per_epoch_instead_of_a_bar(
    synthetic_root, tmp_path, monkeypatch, capsys
):
    """stdout is not a terminal under pytest, as in a batch job's log."""
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(DEMO), "--data.init_args.root", str(synthetic_root)]
    main([*args, "--trainer.max_epochs", "2", "--trainer.logger", "false"])
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all("val/f1_macro 0." in line and "train/loss " in line for line in epochs)
    assert "\r" not in out and "it/s" not in out and len(out) < 2000
