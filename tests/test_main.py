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
        main(["quicklook", "map.tif", "--colours", "x"])
    assert exit_.value.code == 2 and "colours" in capsys.readouterr().err


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "extract, samples, quicklook, demo" in out and "{fit,validate,test,predict}" in out


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
