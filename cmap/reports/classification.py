"""Everything a Classifier run reports besides scalars: figures, projector, per-class table.

Called by the task at each step of validation and at each epoch end; it holds no training
logic. Collected attention and embeddings are capped and cleared every epoch; at the end of a
fit, those of the best checkpoint's model come from one more pass (`cmap.reports.best`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cmap.reports.attention import AttentionReport, scheduled
from cmap.reports.best import best_model_pass
from cmap.reports.tables import per_class_scores, print_table, write_csv
from cmap.reports.tensorboard import EMBEDDING_HEADER as HEADER
from cmap.reports.tensorboard import log_embeddings


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
        log_figures: bool = True,
    ):
        self.classes = classes
        self.attention = AttentionReport(classes, attention_every_n_epochs, max_attention_samples)
        self.embeddings_every = embeddings_every_n_epochs
        self.max_embeddings = max_embeddings
        self.log_figures = log_figures
        self._embeddings: list[torch.Tensor] = []
        self._metadata: list[list[str]] = []

    # -- collection during validation -------------------------------------------------------
    def wants_attention(self, module) -> bool:
        """Whether this validation batch's attention maps are collected (the task can then
        compute them in its own forward pass and hand them to `collect`)."""
        return self.log_figures and self.attention.wanted(module)

    def collect(
        self,
        module,
        batch: dict,
        features: torch.Tensor,
        preds: torch.Tensor,
        maps: torch.Tensor | None = None,
    ) -> None:
        trainer = module.trainer
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if self.log_figures:
            self.attention.collect(module, batch, batch["class"], maps)
        if scheduled(module.current_epoch, self.embeddings_every):
            self._collect_embeddings(module, batch, features, preds)

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
        data = module.trainer.datamodule
        if hasattr(data, "sample_ids"):
            return [str(p) for p in data.sample_ids("val", index)]
        return [str(i) for i in index]

    # -- epoch end ---------------------------------------------------------------------------
    def epoch_end(self, module, stage: str, confusion: np.ndarray) -> None:
        trainer = module.trainer
        embeddings, metadata = self._embeddings, self._metadata
        self._embeddings, self._metadata = [], []
        attention = self.attention.take(module)
        if trainer.sanity_checking:
            return
        log_dir = trainer.log_dir  # a collective call under DDP: every rank must make it
        if not trainer.is_global_zero:
            return
        epoch, logger = module.current_epoch, module.logger
        fn = trainer.state.fn
        title = f"{stage}, epoch {epoch}"
        if fn in ("validate", "test"):
            rows = per_class_scores(confusion, self.classes)
            print_table(rows)
            write_csv(rows, Path(log_dir or ".") / f"per_class_{stage}.csv")
        if embeddings:
            features = torch.cat(embeddings)
            log_embeddings(logger, f"{stage}_embeddings", features, metadata, HEADER, epoch)
        figures = module.figures() if self.log_figures else None
        if figures is None:
            return
        tag = f"{stage}/confusion_matrix"
        figures.draw("confusion_figure", tag, epoch, confusion, self.classes, title)
        if fn == "fit" and epoch == 0:
            counts = dict(zip(self.classes, confusion.sum(axis=1).astype(int).tolist()))
            tag = f"{stage}/label_distribution"
            figures.draw("distribution_figure", tag, epoch, counts, f"{stage} labels")
        self.attention.log(attention, figures, f"{stage}/attention", epoch, title)

    # -- the model kept ----------------------------------------------------------------------
    def fit_end(self, module) -> None:
        """Attention and projector embeddings of the best checkpoint's model, as
        `val/attention_best` and `val_embeddings_best` (see `cmap.reports.best`)."""
        if module.trainer.is_global_zero and (self.log_figures or self.embeddings_every > 0):
            best_model_pass(self, module)
