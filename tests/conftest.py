"""Shared fixtures: tiny datasets written on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cmap.cli import build
from cmap.data.demo import generate
from tests.helpers import REPO, day, run_cmap, write_split

if os.environ.get("PYTEST_XDIST_WORKER"):  # test processes side by side: one thread each
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # and in the `cmap` subprocesses they start


@pytest.fixture(scope="session", name="run_cmap")
def run_cmap_fixture():
    """Runs `cmap ARGS` in a subprocess: `run_cmap(*args, cwd=..., env=None, timeout=300)`."""
    return run_cmap


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic samples folder with a 16 x 16 cube (seed 3)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, points=120, seasons=[2020, 2021], warm_season=2021, cube_size=16, seed=3)
    return root


@pytest.fixture(scope="session")
def checkpoint(synthetic_root, tmp_path_factory):
    """A demo Classifier trained one epoch on `synthetic_root`: its last.ckpt."""
    work = tmp_path_factory.mktemp("cube_model")
    args = ["--config", str(REPO / "configs" / "demo.yaml")]
    args += ["--data.init_args.root", str(synthetic_root), "--trainer.max_epochs", "1"]
    args += ["--trainer.logger.init_args.save_dir", str(work)]
    args += ["--trainer.enable_progress_bar", "false"]
    cli = build(args)
    cli.trainer.fit(cli.model, cli.datamodule)
    return work / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """Hand-made samples: 3 points, 2 bands, season 2021 starting 2020-11-01.

    p1: 3 dates (one NaN row, one outside the season); p2: 2 dates (one nodata); p3: 1 date.
    p3 carries PPH (meadow), a code the mapping does not list.
    """
    features = {
        "poi_id": ["p1", "p1", "p1", "p1", "p2", "p2", "p3"],
        "date": [
            day("2021-03-01"),
            day("2020-11-01"),
            day("2021-01-10"),
            day("2022-01-01"),
            day("2021-05-05"),
            day("2021-06-01"),
            day("2021-02-02"),
        ],
        "B04": [300.0, 100.0, np.nan, 900.0, 500.0, 0.0, 700.0],
        "B08": [3000.0, 1000.0, 2000.0, 9000.0, 5000.0, 0.0, 7000.0],
    }
    labels = {
        "poi_id": ["p1", "p2", "p3"],
        "season": [2021, 2021, 2021],
        "label": ["BTH", "MIS", "PPH"],
    }
    for split in ("train", "val", "test"):
        write_split(tmp_path / split, features, labels)
    (tmp_path / "meta.yaml").write_text("scale: 0.0001\nnodata: 0\nseason_start: '11-01'\n")
    (tmp_path / "mapping.yaml").write_text("ble_tendre: [BTH, BTP]\nmais: [MIS]\n")
    return tmp_path
