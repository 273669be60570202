"""Everything a Classifier run reports besides scalars: figures, projector, per-class table.

Called by the task at each step of validation and at each epoch end; it holds no training
logic. Collected attention and embeddings are capped and cleared every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cmap.reports.attention import AttentionByClass, equal_bins, month_bins
from cmap.reports.figures import attention_figure, confusion_figure, distribution_figure
from cmap.reports.tables import per_class_scores, print_table, write_csv
from cmap.reports.tensorboard import log_embeddings, log_figure

HEADER = ["label", "predicted", "season", "poi_id"]


def scheduled(epoch: int, every: int) -> bool:
    """Epochs 1, 1 + every, 1 + 2 every, ... (0-based, as in the seed); never if every <= 0."""
    return every > 0 and epoch >= 1 and (epoch - 1) % every == 0


class ClassificationReports:
    """Confusion matrices and label distributions (train and val), attention per class and
    projector embeddings (val), per-class tables (validate / test)."""

    def __init__(
        self,
        classes: list[str],
        attention_every_n_epochs: int = 10,
        embeddings_every_n_epochs: int = 10,
        max_attention_samples: int = 2048,
        max_embeddings: int = 2000,
        figures_dir: str | None = None,
        log_figures: bool = True,
    ):
        self.classes = classes
        self.attention_every = attention_every_n_epochs
        self.embeddings_every = embeddings_every_n_epochs
        self.max_attention = max_attention_samples
        self.max_embeddings = max_embeddings
        self.figures_dir = figures_dir
        self.log_figures = log_figures
        self._attention: AttentionByClass | None = None
        self._embeddings: list[torch.Tensor] = []
        self._metadata: list[list[str]] = []

    # -- collection during validation -------------------------------------------------------
    def collect(self, module, batch: dict, features: torch.Tensor, preds: torch.Tensor) -> None:
        trainer = module.trainer
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        epoch = module.current_epoch
        if (
            self.log_figures
            and scheduled(epoch, self.attention_every)
            and hasattr(module.encoder, "get_attention_maps")
        ):
            self._collect_attention(module, batch)
        if scheduled(epoch, self.embeddings_every):
            self._collect_embeddings(module, batch, features, preds)

    def _collect_attention(self, module, batch: dict) -> None:
        if self._attention is None:
            bins, labels = self._season_bins(module)
            self._attention = AttentionByClass(len(self.classes), bins, labels, self.max_attention)
        if self._attention.full:
            return
        mask = batch["mask"]
        maps = module.encoder.get_attention_maps(batch["ts"], batch["positions"], mask)
        self._attention.update(maps, batch["days"], mask, batch["class"])

    @staticmethod
    def _season_bins(module) -> tuple[np.ndarray, list[str]]:
        window = getattr(module.trainer.datamodule, "window", None)
        if window is not None:
            return month_bins(window.start, window.length)
        return equal_bins(400)

    def _collect_embeddings(self, module, batch, features, preds) -> None:
        room = self.max_embeddings - sum(len(e) for e in self._embeddings)
        if room <= 0:
            return
        pooled = module.decoder.pool(features, batch["mask"])  # [N, D], pooled or not
        self._embeddings.append(pooled[:room].detach().float().cpu())
        index = batch["index"][:room].cpu().numpy()
        ids = self._poi_ids(module, index)
        for target, pred, season, poi in zip(
            batch["class"][:room].tolist(),
            preds[:room].tolist(),
            batch["season"][:room].tolist(),
            ids,
        ):
            self._metadata.append([self.classes[target], self.classes[pred], str(season), poi])

    @staticmethod
    def _poi_ids(module, index: np.ndarray) -> list[str]:
        datasets = getattr(module.trainer.datamodule, "datasets", {})
        if "val" in datasets:
            return [str(p) for p in datasets["val"].table.poi_ids[index]]
        return [str(i) for i in index]

    # -- epoch end ---------------------------------------------------------------------------
    def epoch_end(self, module, stage: str, confusion: np.ndarray) -> None:
        trainer = module.trainer
        attention, embeddings, metadata = self._attention, self._embeddings, self._metadata
        self._attention, self._embeddings, self._metadata = None, [], []
        if trainer.sanity_checking:
            return
        if attention is not None and attention.sums is not None and trainer.world_size > 1:
            attention.sums = trainer.strategy.reduce(
                attention.sums.to(module.device), reduce_op="sum"
            ).cpu()
            attention.counts = trainer.strategy.reduce(
                attention.counts.to(module.device), reduce_op="sum"
            ).cpu()
        log_dir = trainer.log_dir  # a collective call under DDP: every rank must make it
        if not trainer.is_global_zero:
            return
        epoch, logger, out = module.current_epoch, module.logger, self.figures_dir
        fn = trainer.state.fn
        title = f"{stage}, epoch {epoch}"
        if fn in ("validate", "test"):
            rows = per_class_scores(confusion, self.classes)
            print_table(rows)
            write_csv(rows, Path(log_dir or ".") / f"per_class_{stage}.csv")
        if embeddings:
            features = torch.cat(embeddings)
            log_embeddings(logger, f"{stage}_embeddings", features, metadata, HEADER, epoch)
        if not self.log_figures:
            return
        log_figure(
            logger,
            f"{stage}/confusion_matrix",
            confusion_figure(confusion, self.classes, title),
            epoch,
            out,
        )
        if fn == "fit" and epoch == 0:
            counts = dict(zip(self.classes, confusion.sum(axis=1).astype(int).tolist()))
            log_figure(
                logger,
                f"{stage}/label_distribution",
                distribution_figure(counts, f"{stage} labels"),
                epoch,
                out,
            )
        if attention is not None:
            for k, mean in attention.means().items():
                name = self.classes[k]
                fig = attention_figure(
                    mean, attention.labels, f"{name}: attention received, epoch {epoch}"
                )
                log_figure(logger, f"{stage}/attention/{name}", fig, epoch, out)
