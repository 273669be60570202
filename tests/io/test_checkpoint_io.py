"""Checkpoints are written beside their final name and renamed when complete."""

from __future__ import annotations

import errno

import pytest
import torch

from cmap.errors import DataError
from cmap.io.checkpoint_io import AtomicCheckpointIO


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]

    def full_disk(obj, target):
        with open(target, "wb") as f:
            f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DataError, match="last.ckpt: cannot be written .No space left on device."):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_the_cmap_command_writes_checkpoints_with_it():
    from cmap.cli import build
    from tests.helpers import DEMO

    trainer = build(["--config", str(DEMO), "--trainer.logger", "false"]).trainer
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
