"""Two-process (DDP on CPU, gloo) training: metrics, reports and checkpoints still work."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cmap.data import SITSDataModule
from cmap.main import main
from tests.helpers import DEMO, DEMO_CUBE, PREDICT

pytestmark = pytest.mark.slow  # subprocesses or several processes

DDP = [
    *("--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"),
    *("--trainer.enable_progress_bar", "false"),
]


def test_two_process_training_logs_reports_once(tmp_path, synthetic_root, run_cmap):
    result = run_cmap(
        "fit",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        "--trainer.max_epochs",
        "2",
        *DDP,
        "--model.init_args.encoder.init_args.n_layers",
        "1",
        "--model.init_args.attention_every_n_epochs",
        "1",
        "--model.init_args.embeddings_every_n_epochs",
        "1",
        "--model.init_args.max_embeddings",
        "10",
        "--trainer.callbacks+=tests.helpers.RecordTrainIndices",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Each epoch, the two processes train on disjoint halves that cover the training split.
    seen = {}
    for rank in (0, 1):
        for line in (tmp_path / f"train_indices_rank{rank}.txt").read_text().splitlines():
            epoch, *indices = map(int, line.split())
            seen.setdefault((epoch, rank), []).extend(indices)
    train = SITSDataModule(str(synthetic_root))
    train.setup("fit")
    size = len(train.datasets["train"])
    for epoch in (0, 1):
        a, b = set(seen[(epoch, 0)]), set(seen[(epoch, 1)])
        # DistributedSampler pads an odd split with one sample seen by both processes
        assert len(a & b) == size % 2 and len(seen[(epoch, 0)]) == len(a)
        assert a | b == set(range(size))
    version = tmp_path / "lightning_logs" / "version_0"
    assert (version / "checkpoints" / "last.ckpt").exists()
    events = EventAccumulator(str(version), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Images("val/confusion_matrix")] == [0, 1]  # rank 0 only
    assert "val/attention" in events.Tags()["images"]
    f1 = [e.value for e in events.Scalars("val/f1_macro")]
    assert len(f1) == 2 and all(0 <= v <= 1 for v in f1)
    vectors = np.loadtxt(version / "00001" / "val_embeddings" / "tensors.tsv", delimiter="\t")
    assert vectors.shape[0] == 10
    # Validation on two processes: the per-class table is written once, with every sample.
    result = run_cmap(
        "validate",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        *DDP,
        "--ckpt_path",
        version / "checkpoints" / "last.ckpt",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (tmp_path / "lightning_logs" / "version_1" / "per_class_val.csv").read_text()
    support = sum(int(line.rsplit(",", 1)[1]) for line in rows.splitlines()[1:])
    assert support == len(SITSDataModule(str(synthetic_root)).load_split("val"))


def test_two_process_prediction_writes_one_map(tmp_path, checkpoint, run_cmap, monkeypatch):
    """Each process predicts its own windows; the map equals a one-process run."""
    import rasterio

    monkeypatch.chdir(tmp_path)
    common = ["predict", "--config", PREDICT, "--data.init_args.cube", DEMO_CUBE,
              "--ckpt_path", checkpoint]  # fmt: skip
    main([*map(str, common), "--trainer.callbacks.output", "one.tif"])  # one process
    two = run_cmap(*common, *DDP, "--trainer.callbacks.output", "two.tif", cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    for name in ("{}.tif", "{}_probabilities.tif"):
        with rasterio.open(tmp_path / name.format("one")) as a:
            with rasterio.open(tmp_path / name.format("two")) as b:
                assert np.array_equal(a.read(), b.read()) and a.profile == b.profile
    assert not (tmp_path / "two.tif.parts").exists()
