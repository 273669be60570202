"""Writing figures and projector embeddings to TensorBoard (and figures to PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def summary_writer(logger):
    """The TensorBoard SummaryWriter behind a Lightning logger, or None for other loggers."""
    writer = getattr(logger, "experiment", None)
    return writer if hasattr(writer, "add_figure") else None


def log_figure(logger, tag: str, fig: Figure, step: int, figures_dir: str | None) -> None:
    """Figure to TensorBoard under `tag`, and to `<figures_dir>/<tag>_epoch<step>.png`."""
    if figures_dir:
        path = Path(figures_dir) / f"{tag.replace('/', '_')}_epoch{step:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    writer = summary_writer(logger)
    if writer is not None:
        writer.add_figure(tag, fig, global_step=step, close=False)
    plt.close(fig)


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
