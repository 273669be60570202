"""configs/trainer/slurm.yaml: a pre-empted job saves, requeues itself and resumes exactly."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # subprocesses


def slurm_env(tmp_path):
    """A one-task SLURM job's environment, with an `scontrol` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text('#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    return os.environ | {
        "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "cmap",
        "SLURM_NODELIST": "localhost", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0", "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SCONTROL_LOG": str(tmp_path / "scontrol.log"), "PYTHONPATH": str(REPO),
    }  # fmt: skip


def fit(run_cmap, folder, root, env, *extra):
    folder.mkdir(exist_ok=True)
    return run_cmap(
        *("fit", "--config", str(REPO / "configs" / "demo.yaml")),
        *("--trainer", str(REPO / "configs" / "trainer" / "slurm.yaml")),
        *("--data.init_args.root", str(root), "--trainer.max_epochs", "3"),
        *("--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "2"),
        *("--trainer.logger.init_args.save_dir", "logs", "--trainer.enable_progress_bar", "false"),
        *("--model.init_args.log_figures", "false", "--ckpt_path", "last"),
        *extra,
        cwd=folder,
        env=env,
    )


def last_weights(folder):
    found = sorted(folder.glob("logs/lightning_logs/version_*/checkpoints/last.ckpt"))
    return torch.load(found[-1], map_location="cpu", weights_only=False)


def test_a_preempted_job_requeues_and_resumes_to_the_same_weights(
    tmp_path, synthetic_root, run_cmap
):
    env = slurm_env(tmp_path)
    reference = fit(run_cmap, tmp_path / "reference", synthetic_root, env)
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "SLURM auto-requeueing enabled" in reference.stderr
    job = tmp_path / "job"
    preempt = ["--trainer.callbacks+=tests.helpers.PreemptAtStep", "--trainer.callbacks.step=6"]
    first = fit(run_cmap, job, synthetic_root, env, *preempt)  # killed in epoch 1
    assert first.returncode != 0
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert list(job.glob("hpc_ckpt_*.ckpt"))  # Lightning's own save at the warning
    requeued = fit(run_cmap, job, synthetic_root, env)  # the same command, requeued
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "resuming from" in requeued.stderr and "last.ckpt" in requeued.stderr
    expected, resumed = last_weights(tmp_path / "reference"), last_weights(job)
    assert resumed["epoch"] == expected["epoch"] == 2
    torch.testing.assert_close(resumed["state_dict"], expected["state_dict"], rtol=0, atol=0)
