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
    synthetic_root, tmp_path, monkeypatch, caplog
):
    """`logger: false`: the learning-rate monitor is left out (said in the log), checkpoints
    are still written, and figures reach `figures_dir` when one is given."""
    monkeypatch.chdir(tmp_path)
    figures = tmp_path / "figures"
    with caplog.at_level("INFO"):
        fit(
            synthetic_root,
            *("--trainer.logger", "false", "--trainer.max_epochs", "1"),
            *("--model.init_args.figures_dir", str(figures)),
        )
    assert "learning rates are not logged" in caplog.text
    assert list(tmp_path.glob("checkpoints/*.ckpt"))
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
