"""Checkpoints written beside their final name and renamed when complete."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from cmap.errors import DataError
from cmap.io.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but the temporary file lies beside the target (the same
    filesystem, so the final rename is atomic: a kill or a full disk never leaves a truncated
    checkpoint under its final name) and a failed write is one clear error. Remote paths
    (`s3://...`) are left to Lightning."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as partial:
                torch.save(checkpoint, partial)
        except OSError as err:
            raise DataError(path, f"cannot be written ({err.strerror or err})") from err
