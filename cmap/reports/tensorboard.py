"""The run's TensorBoard writer and projector embeddings (figures: `cmap.reports.worker`)."""

from __future__ import annotations

import torch
from pytorch_lightning.loggers import TensorBoardLogger

EMBEDDING_HEADER = ["label", "predicted", "season", "poi_id"]  # projector metadata columns


def summary_writer(logger):
    """The TensorBoard SummaryWriter behind a Lightning logger; None for no logger, other
    loggers and the stand-in logger of fast dev runs."""
    return logger.experiment if isinstance(logger, TensorBoardLogger) else None


def spherize(features: torch.Tensor) -> torch.Tensor:
    """[M, D] -> centred, unit-norm rows (what the projector's 'spherize' option does)."""
    centred = features.float() - features.float().mean(dim=0, keepdim=True)
    return torch.nn.functional.normalize(centred, dim=1)


def log_embeddings(
    logger,
    tag: str,
    features: torch.Tensor,
    metadata: list[list[str]],
    header: list[str],
    step: int,
) -> None:
    """Spherized features [M, D] with one metadata row per feature row, for the projector."""
    writer = summary_writer(logger)
    if writer is not None and len(features):
        writer.add_embedding(
            spherize(features),
            metadata=metadata,
            metadata_header=header,
            global_step=step,
            tag=tag,
        )
