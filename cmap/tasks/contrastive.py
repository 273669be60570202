"""Self-supervised multi-view pretraining: views of the same series are pulled together."""

from __future__ import annotations

import torch

from cmap.errors import ConfigError
from cmap.models.base import Encoder, Loss, PoolingHead
from cmap.models.losses import NTXent
from cmap.reports.contrastive import ContrastiveReports
from cmap.tasks.base import Task
from cmap.tasks.views import DateSubset, GaussianNoise, SeriesAugmentation, make_view


class Contrastive(Task):
    """Contrastive / redundancy-reduction pretraining of an encoder (labels are not used).

    Each step makes `n_views` views of every series of the batch, each through the
    `augmentations` in turn (seeded per series, epoch and view: see `cmap.tasks.views`),
    encodes them, pools and projects them with the `decoder` (a `ProjectionHead`) and trains
    with `criterion` on the projections [V, N, P]. Validation draws its views as at epoch 0
    every time, so its loss is comparable across epochs. `cmap extract` reads the encoder out
    of its checkpoints, for fine-tuning as after the AutoEncoder.

    Args:
        encoder: (ts [N, T, C], positions [N, T], mask [N, T]) -> [N, T, D] or [N, D].
        decoder: projection head ([N, T, D] or [N, D], mask) -> [N, P] with a `pool` method.
        criterion: `NTXent` (default, temperature 0.1) or `BarlowTwins`, on [V, N, P].
        augmentations: the view pipeline; default a random 60 % of the dates (at least 2)
            then Gaussian noise of sd 0.01.
        n_views: views per series (>= 2).
        options: `optimizer`, `lr_scheduler`, `compile`, `figures_dir`, `log_figures`, as
            every task takes them (`Task`).
        bands, classes: linked from the data (figures, projector metadata).
        views_every_n_epochs, views_sample: figure of that many validation series and their
            views at epochs 1, 1 + n, ... (0: never).
        embeddings_every_n_epochs, max_embeddings: the encoder's pooled features of up to that
            many validation series for TensorBoard's projector on the same schedule.
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: PoolingHead,
        criterion: Loss | None = None,
        augmentations: list[SeriesAugmentation] | None = None,
        n_views: int = 2,
        bands: list[str] | None = None,
        classes: list[str] | None = None,
        views_every_n_epochs: int = 10,
        views_sample: int = 4,
        embeddings_every_n_epochs: int = 10,
        max_embeddings: int = 2000,
        **options,
    ):
        super().__init__(encoder, decoder, **options)
        self.save_hyperparameters(ignore=["criterion"])
        if n_views < 2:
            raise ConfigError(f"Contrastive needs n_views >= 2, got {n_views}")
        if not isinstance(decoder, PoolingHead):
            raise ConfigError(
                f"the Contrastive task needs a projection head with pool() (ProjectionHead); "
                f"{type(decoder).__name__} has none"
            )
        self.criterion = criterion if criterion is not None else NTXent()
        self.augmentations = augmentations if augmentations is not None else default_views()
        self.n_views = n_views
        self.bands = list(bands) if bands else ["band0"]
        self.reports = ContrastiveReports(
            self.bands,
            [*(classes or []), "unlabelled"],
            views_every_n_epochs,
            views_sample,
            embeddings_every_n_epochs,
            max_embeddings,
            self.log_figures,
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batch (ts [N, T, C], positions [N, T], mask [N, T]) -> pooled features [N, D]."""
        features = self.encoder(batch["ts"], batch["positions"], batch["mask"])
        return self.decoder.pool(features, batch["mask"])

    def views(self, batch: dict, stage: str) -> list[dict]:
        epoch = self.current_epoch if stage == "train" else 0
        return [make_view(self.augmentations, batch, epoch, v) for v in range(self.n_views)]

    def _step(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int = 0) -> torch.Tensor:
        views = self.views(batch, stage)
        n = len(batch["mask"])
        together = {k: torch.cat([v[k] for v in views]) for k in ("ts", "positions", "mask")}
        # one pass over every view: [V N, T, ...] -> projections [V, N, P]
        features = self.encoder(together["ts"], together["positions"], together["mask"])
        z = self.decoder(features, together["mask"]).reshape(self.n_views, n, -1)
        loss = self.criterion(z)
        if stage == "val":
            pooled = None
            if self.reports.wants_embeddings(self):  # one more pass, on the projector's epochs
                with torch.no_grad():
                    pooled = self(batch)
            groups = torch.where(batch["class"] >= 0, batch["class"], len(self.reports.groups) - 1)
            self.reports.collect(self, batch | {"class": groups}, views, pooled)
        self.log_loss(stage, loss, n)
        return loss

    def _epoch_end(self, stage: str):
        if stage == "val":
            self.reports.epoch_end(self, stage)

    def configure_optimizers(self):
        return self._optimizers([{"params": list(self.parameters())}])


def default_views() -> list[SeriesAugmentation]:
    return [DateSubset(keep=0.6, min_dates=2), GaussianNoise(std=0.01)]
