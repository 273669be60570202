"""A `cmap fit` killed with SIGKILL, resumed with --ckpt_path last, ends as an uninterrupted run."""

from __future__ import annotations

import signal

import pytest
import torch

from tests.helpers import DEMO

pytestmark = pytest.mark.slow  # subprocesses or several processes

RUN = [
    "--trainer.max_epochs",
    "4",
    "--trainer.enable_progress_bar",
    "false",
    "--model.init_args.encoder.init_args.n_layers",
    "1",
    "--data.init_args.batch_size",
    "64",
    "--data.init_args.date_dropout",
    "0.1",
]


@pytest.fixture
def fit(run_cmap):
    """`cmap fit` of the demo config, shortened, in a subprocess (tests.helpers importable)."""

    def run(work, root, *extra):
        args = ["fit", "--config", DEMO, "--data.init_args.root", root, *RUN, *extra]
        return run_cmap(*args, cwd=work)

    return run


def final_state(version):
    checkpoint = torch.load(version / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"], checkpoint["epoch"], checkpoint["global_step"]


def test_killed_run_resumes_to_the_same_result(tmp_path, synthetic_root, fit):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    first = fit(straight, synthetic_root, "--ckpt_path", "last")  # nothing to resume yet
    assert first.returncode == 0 and "starting afresh" in first.stderr
    # 3 training batches per epoch: step 7 is in the middle of the third epoch.
    kill = ["--trainer.callbacks+=tests.helpers.KillAtStep", "--trainer.callbacks.step=7"]
    result = fit(killed, synthetic_root, *kill)
    assert result.returncode == -signal.SIGKILL
    last = killed / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1  # end of the second epoch
    resumed = fit(killed, synthetic_root, "--ckpt_path", "last")  # the newest last.ckpt here
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"cmap: resuming from {last.relative_to(killed)}" in resumed.stderr
    expected, epoch, step = final_state(straight / "lightning_logs" / "version_0")
    got, got_epoch, got_step = final_state(killed / "lightning_logs" / "version_1")
    assert (got_epoch, got_step) == (epoch, step)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, msg=key)


def test_same_config_and_seed_give_identical_metrics(tmp_path, synthetic_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cmap.cli import build

    scores = []
    for name in ("one", "two"):  # in one process: every seed is set again by the run
        cli = build([
            *("--config", str(DEMO), "--data.init_args.root", str(synthetic_root), *RUN),
            *("--trainer.max_epochs", "2"),
            *("--trainer.logger.init_args.save_dir", str(tmp_path / name)),
        ])  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        version = tmp_path / name / "lightning_logs" / "version_0"
        events = EventAccumulator(str(version)).Reload()
        scores.append(
            {tag: [e.value for e in events.Scalars(tag)] for tag in ("val/f1_macro", "val/loss")}
        )
    assert scores[0] == scores[1] and len(scores[0]["val/loss"]) == 2
