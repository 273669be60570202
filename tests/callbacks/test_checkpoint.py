"""The best checkpoint survives a run resumed into a new log folder."""

from __future__ import annotations

import torch

from cmap.callbacks import ModelCheckpoint
from cmap.cli import build
from tests.helpers import DEMO


def test_a_resumed_run_keeps_the_earlier_best_and_never_deletes_it(tmp_path):
    earlier = tmp_path / "version_0" / "epoch=3-f1=0.9000.ckpt"
    earlier.parent.mkdir()
    earlier.write_bytes(b"the earlier run's best")
    state = {
        "dirpath": str(earlier.parent),
        "best_model_path": str(earlier),
        "best_model_score": torch.tensor(0.9),
        "best_k_models": {str(earlier): torch.tensor(0.9)},
    }
    callback = ModelCheckpoint(dirpath=tmp_path / "version_1", monitor="val/f1_macro", mode="max")
    callback.load_state_dict(state)
    assert callback.best_model_path == str(earlier)
    assert float(callback.best_model_score) == float(torch.tensor(0.9))
    callback._remove_checkpoint(None, str(earlier))  # what a better epoch would do
    assert earlier.read_bytes() == b"the earlier run's best"


def test_the_configs_resume_with_the_best_score_of_the_earlier_run(synthetic_root, tmp_path):
    args = ["--config", str(DEMO), "--data.init_args.root", str(synthetic_root)]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "2"]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path)]
    first = build(args)
    first.trainer.fit(first.model, first.datamodule)
    best = next(c for c in first.trainer.checkpoint_callbacks if c.monitor)
    assert isinstance(best, ModelCheckpoint)
    earlier_path, earlier_score = best.best_model_path, float(best.best_model_score)
    last = tmp_path / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    second = build([*args, "--trainer.max_epochs", "3"])
    second.trainer.fit(second.model, second.datamodule, ckpt_path=str(last))
    resumed = next(c for c in second.trainer.checkpoint_callbacks if c.monitor)
    assert float(resumed.best_model_score) >= earlier_score  # never forgets the earlier best
    if float(resumed.best_model_score) == earlier_score:
        assert resumed.best_model_path == earlier_path
    assert (tmp_path / "lightning_logs" / "version_0" / "checkpoints").exists()
    assert any(
        p.name.startswith("epoch=")
        for p in (tmp_path / "lightning_logs" / "version_0" / "checkpoints").iterdir()
    )
