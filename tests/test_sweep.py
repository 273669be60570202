"""cmap sweep: the search space, the summary, a grid on tiny data, resume after a kill."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
import yaml

from cmap.errors import ConfigError
from cmap.sweep import sweep
from cmap.sweep.command import ReportToTrial, _storage
from cmap.sweep.space import as_arguments, check_space, suggest
from cmap.sweep.summary import summary
from tests.helpers import REPO

LR = "model.init_args.optimizer.init_args.lr"
GAMMA = "model.init_args.criterion.init_args.gamma"


def test_the_space_is_checked_and_suggested_as_cmap_arguments():
    space = {
        LR: {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.init_args.encoder.init_args.n_layers": {"type": "int", "low": 1, "high": 4},
        "model.init_args.encoder.init_args.bands_encoder.init_args.widths": {
            "type": "categorical",
            "choices": [[32, 64], [64, 64]],
        },
    }
    check_space(space, "tpe")
    trial = optuna.trial.FixedTrial(
        {LR: 3e-3, "model.init_args.encoder.init_args.n_layers": 2,
         "model.init_args.encoder.init_args.bands_encoder.init_args.widths": [64, 64]}
    )  # fmt: skip
    values = suggest(trial, space)
    assert as_arguments(values) == [
        f"--{LR}", "0.003", "--model.init_args.encoder.init_args.n_layers", "2",
        "--model.init_args.encoder.init_args.bands_encoder.init_args.widths", "[64, 64]",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="grid takes categorical"):
        check_space(space, "grid")
    with pytest.raises(ConfigError, match="needs `low` and `high`"):
        check_space({LR: {"type": "float", "low": 0.1}}, "tpe")
    with pytest.raises(ConfigError, match="type must be one of"):
        check_space({LR: {"type": "real"}}, "tpe")
    with pytest.raises(ConfigError, match="names no value"):
        check_space({}, "tpe")


def test_the_summary_lists_every_trial(tmp_path):
    study = optuna.create_study(direction="maximize")
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-2)
    for value, lr in ((0.5, 1e-3), (0.7, 2e-3)):
        study.add_trial(
            optuna.trial.create_trial(
                params={LR: lr}, distributions={LR: distribution}, value=value
            )
        )
    rows = summary(study, tmp_path, "val/f1_macro")
    assert [r["val/f1_macro"] for r in rows] == [0.5, 0.7] and rows[1][LR] == 2e-3
    with open(tmp_path / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["state"] for t in table] == ["COMPLETE", "COMPLETE"] and table[1][LR] == "0.002"
    markdown = (tmp_path / "summary.md").read_text().splitlines()
    assert markdown[0].startswith("| trial | state | val/f1_macro |") and "| 0.7 |" in markdown[3]


TINY = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2"]
TINY += ["--trainer.limit_val_batches", "1", "--model.init_args.log_figures", "false"]


def test_a_grid_sweep_runs_every_combination_once(tmp_path, synthetic_root, capsys):
    space = {
        LR: {"type": "categorical", "choices": [1e-3, 3e-3]},
        GAMMA: {"type": "categorical", "choices": [0.0]},
    }
    args = ["--data.init_args.root", str(synthetic_root), *TINY]
    config = REPO / "configs" / "demo.yaml"
    sweep(config, tmp_path / "sweep", space, args, sampler="grid", prune=False)
    with open(tmp_path / "sweep" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r[LR]) for r in rows) == [1e-3, 3e-3]
    assert all(r["state"] == "COMPLETE" and 0 <= float(r["val/f1_macro"]) <= 1 for r in rows)
    for row in rows:
        assert (
            tmp_path / "sweep" / row["log_dir"] / "version_0" / "checkpoints" / "last.ckpt"
        ).exists()
        assert (tmp_path / "sweep" / "hparams" / f"trial_{row['trial']}").is_dir()
    assert "best trial" in capsys.readouterr().out
    sweep(config, tmp_path / "sweep", space, args, sampler="grid", prune=False)  # done: no new run
    assert len(list((tmp_path / "sweep" / "trials").iterdir())) == 2
    with pytest.raises(ConfigError, match="log no 'val/kappa_x'"):
        sweep(config, tmp_path / "other", space, args, metric="val/kappa_x", sampler="grid")


def test_a_storage_made_at_once_by_another_process_is_opened_again(tmp_path, monkeypatch):
    import sqlalchemy.exc

    made = []
    real = optuna.storages.RDBStorage

    def racing(*args, **kwargs):  # the first open loses the race to make the tables
        made.append(args[0])
        if len(made) == 1:
            raise sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, Exception("exists"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    storage = _storage(tmp_path, heartbeat_s=1)
    assert len(made) == 2 and isinstance(storage, real)
    assert (tmp_path / "optuna.db").is_file()


def _trial_states(db: Path) -> list[str]:
    """The trials' states in the sweep's study, read without writing (opening the storage
    through Optuna would race the sweep making its tables)."""
    if not db.is_file():
        return []
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            return [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")]
    except sqlite3.OperationalError:  # the tables are not made yet
        return []


@pytest.mark.slow
def test_a_killed_sweep_resumes_keeping_finished_trials(tmp_path, synthetic_root):
    settings = {
        "run_config": str(REPO / "configs" / "demo.yaml"),
        "folder": str(tmp_path / "sweep"),
        "space": {LR: {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "args": ["--data.init_args.root", str(synthetic_root), *TINY],
        "sampler": "random",
        "n_trials": 3,
        "prune": False,
        "heartbeat_s": 1,
    }
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump(settings))
    process = subprocess.Popen(
        [sys.executable, "-m", "cmap.main", "sweep", "--config", str(config)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": str(REPO)}, start_new_session=True,
    )  # fmt: skip
    db = tmp_path / "sweep" / "optuna.db"
    storage = f"sqlite:///{db}"
    deadline, states = time.time() + 300, []
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.5)  # kill it once trial 0 is done and trial 1 runs
        states = _trial_states(db)
        if len(states) >= 2 and states[0] == "COMPLETE":
            break
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the sweep ended before it was killed"
    assert states[:2] == ["COMPLETE", "RUNNING"], f"trial states when killed: {states}"
    first = optuna.load_study(study_name="cmap", storage=storage).trials
    assert first[0].state.name == "COMPLETE" and first[1].state.name == "RUNNING"
    time.sleep(3)  # past the grace period of the killed trial's heartbeat
    sweep(**settings)
    trials = optuna.load_study(study_name="cmap", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 3 and states[1] == "FAIL"
    assert trials[0].value == first[0].value and trials[0].params == first[0].params
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retried and retried[0].params == first[1].params  # the killed trial, run again


@pytest.mark.slow
def test_two_processes_share_a_grid_without_repeats(tmp_path, synthetic_root):
    space = {
        LR: {"type": "categorical", "choices": [1e-3, 3e-3]},
        GAMMA: {"type": "categorical", "choices": [0.0, 2.0]},
    }
    args = ["--data.init_args.root", str(synthetic_root), *TINY]
    sweep(REPO / "configs" / "demo.yaml", tmp_path, space, args, sampler="grid", processes=2)
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(r["state"] in ("COMPLETE", "PRUNED") for r in rows)
    assert len({(r[LR], r[GAMMA]) for r in rows}) == 4  # every combination, once


def test_a_pruned_trial_ends_its_run_after_the_epoch():
    class Trial:
        reported = []

        def report(self, value, step):
            self.reported.append((value, step))

        def should_prune(self):
            return len(self.reported) == 2

    trainer = SimpleNamespace(
        sanity_checking=False, current_epoch=0, should_stop=False,
        callback_metrics={"val/f1_macro": torch.tensor(0.5)},
    )  # fmt: skip
    report = ReportToTrial(Trial(), "val/f1_macro", maximize=True)
    report.on_validation_end(trainer, None)
    assert report.best == 0.5 and not trainer.should_stop and report.pruned is None
    trainer.current_epoch, trainer.callback_metrics["val/f1_macro"] = 1, torch.tensor(0.25)
    report.on_validation_end(trainer, None)
    assert trainer.should_stop and report.pruned == "epoch 1: val/f1_macro 0.2500"
    assert report.best == 0.5 and Trial.reported == [(0.5, 0), (0.25, 1)]
