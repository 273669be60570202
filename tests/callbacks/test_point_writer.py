"""Prediction writers never overwrite a user's file silently."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cmap.callbacks import PointPredictionWriter


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    trainer = SimpleNamespace(log_dir=str(tmp_path), world_size=1, global_rank=0)
    target = tmp_path / "mine.parquet"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="mine.parquet: already exists"):
        PointPredictionWriter(str(target)).on_predict_start(trainer, None)
    writer = PointPredictionWriter(str(target), overwrite=True)
    writer.on_predict_start(trainer, None)
    assert writer.path == target
    default = PointPredictionWriter()
    default.on_predict_start(trainer, None)
    assert default.path == tmp_path / "predictions.parquet"
