"""The frozen features few-shot episodes are drawn from: a labelled split of a samples
folder through an encoder, pooled over valid dates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cmap.data.series.module import SITSDataModule
from cmap.errors import ConfigError
from cmap.models.base import PoolingHead
from cmap.models.decoders import masked_max

STAGE = {"train": "fit", "val": "validate", "test": "test"}


def labelled_split(data, split: str, root: str | Path | None = None, bands=None):
    """The series dataset of `split` with labels: from the samples folder `root` (the bands
    `bands`, in that order), else from the run's own SITSDataModule read with labels (a
    pretraining run reads its series without them)."""
    if root is not None:
        module = SITSDataModule(str(root), bands=bands)
    elif isinstance(data, SITSDataModule):
        kept = {k: v for k, v in data.hparams.items() if k != "labelled"}
        module = SITSDataModule(**kept, bands=list(data.bands), labelled=True)
    else:
        raise ConfigError(
            f"few-shot evaluation needs labelled series: the run's {type(data).__name__} has "
            "none, give `root` (a labelled samples folder with the same bands)"
        )
    module.setup(STAGE[split])
    return module.datasets[split]


def pooling(module) -> Callable | None:
    """A task's pooling over dates: its head's when the head pools, else None (masked max)."""
    return module.decoder.pool if isinstance(module.decoder, PoolingHead) else None


def split_features(
    encoder: nn.Module, dataset, pool=None, batch_size: int = 512
) -> tuple[torch.Tensor, np.ndarray]:
    """Every series of `dataset` through `encoder` (eval mode, no gradients) and `pool`
    (default: masked max over valid dates) -> features [M, D] and labels [M]."""
    pool = pool or masked_max
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    features, labels = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = dataset.__getitems__(list(range(start, min(start + batch_size, len(dataset)))))
            mask = batch["mask"].to(device)
            x = encoder(batch["ts"].to(device), batch["positions"].to(device), mask)
            features.append((pool(x, mask) if x.dim() == 3 else x).float().cpu())
            labels.append(batch["class"].numpy())
    encoder.train(was_training)
    return torch.cat(features), np.concatenate(labels)
