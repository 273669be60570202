"""Self-supervised pretraining: reconstruct the dates hidden from the encoder."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.regression import MeanSquaredError

from cmap.errors import ConfigError
from cmap.models.base import Encoder, Loss, ReconstructionHead
from cmap.models.losses import MaskedMSE
from cmap.reports.metrics import print_metrics
from cmap.reports.reconstruction import ReconstructionReports
from cmap.tasks.base import Task
from cmap.tasks.masking import MaskMode, hide_dates

STAGES = ("train", "val", "test")


class AutoEncoder(Task):
    """Masked auto-encoder over the dates of a series (labels are not used for training).

    Each step hides `mask_ratio` of every series' valid dates, encodes the visible ones
    (hidden dates get a position-only query, so the encoder outputs features there from the
    visible dates alone), reconstructs all bands at every valid date with the decoder, and
    computes `criterion` on the hidden dates only. Validation hides the same dates at every
    epoch (drawn from the batch index), so its loss is comparable across epochs.

    Args:
        encoder: per-date encoder (ts [N, T, C], positions, mask, queries) -> [N, T, D].
        decoder: reconstruction head [N, T, D] -> [N, T, C] (`Reconstruction`).
        criterion: loss on (reconstruction, target, hidden [N, T]); default `MaskedMSE`.
        mask_ratio: share of each series' valid dates hidden (at least one, never all).
        mask_mode: "random" dates, or one "contiguous" run of dates (a cloudy spell).
        bands: band names (linked from the data) for per-band errors and NDVI.
        classes: class names (linked from the data) to group attention maps when samples
            are labelled; unlabelled samples are grouped as "unlabelled".
        ndvi_sample: number of validation series drawn in the NDVI figures.
        ndvi_every_n_epochs: NDVI figures at epochs 1, 1 + n, ... (0: never).
        red_band, nir_band: bands NDVI is computed from (unless the data has an NDVI band).
        attention_every_n_epochs, max_attention_samples: attention maps as in the Classifier.
        options: `optimizer`, `lr_scheduler`, `compile`, `figures_dir`, `log_figures`, as
            every task takes them (`Task`).
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: ReconstructionHead,
        criterion: Loss | None = None,
        mask_ratio: float = 0.5,
        mask_mode: MaskMode = "random",
        bands: list[str] | None = None,
        classes: list[str] | None = None,
        ndvi_sample: int = 8,
        ndvi_every_n_epochs: int = 10,
        red_band: str = "B04",
        nir_band: str = "B08",
        attention_every_n_epochs: int = 10,
        max_attention_samples: int = 2048,
        **options,
    ):
        super().__init__(encoder, decoder, **options)
        self.save_hyperparameters(ignore=["criterion"])
        if not 0 < mask_ratio < 1:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.mask_ratio, self.mask_mode = mask_ratio, mask_mode
        self.criterion = criterion if criterion is not None else MaskedMSE()
        if not isinstance(decoder, ReconstructionHead):
            raise ConfigError(
                f"the AutoEncoder needs a reconstruction head (e.g. Reconstruction); "
                f"{type(decoder).__name__} has no out_bands"
            )
        out_bands = decoder.out_bands
        self.bands = list(bands) if bands else [f"band{i}" for i in range(out_bands)]
        if len(self.bands) != out_bands:
            raise ConfigError(
                f"the decoder reconstructs {out_bands} bands but {len(self.bands)} band names "
                f"are given: {self.bands}"
            )
        self.groups = [*(classes or []), "unlabelled"]
        # Mean squared error per band on hidden dates: train_mse, val_mse, test_mse.
        errors = MetricCollection({"mse": MeanSquaredError(num_outputs=out_bands)})
        for stage in STAGES:
            setattr(self, f"{stage}_mse", errors.clone(prefix=f"{stage}/"))
        self.reports = ReconstructionReports(
            self.bands,
            self.groups,
            ndvi_every_n_epochs,
            ndvi_sample,
            red_band,
            nir_band,
            attention_every_n_epochs,
            max_attention_samples,
            self.log_figures,
        )

    def forward(self, batch: dict[str, torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
        """Batch (ts [N, T, C], positions [N, T], mask [N, T]) and hidden [N, T] (a subset
        of mask) -> reconstruction [N, T, C] at every valid date, from the visible ones."""
        valid = batch["mask"]
        visible = valid & ~hidden
        ts = batch["ts"].masked_fill(~visible[..., None], 0.0)
        features = self.encoder(ts, batch["positions"], visible, queries=valid)
        return self.decoder(features, valid)

    def _hide(self, batch: dict, stage: str, batch_idx: int) -> torch.Tensor:
        generator = None
        if stage != "train":  # the same hidden dates at every evaluation
            generator = torch.Generator(batch["mask"].device).manual_seed(batch_idx)
        return hide_dates(batch["mask"], self.mask_ratio, self.mask_mode, generator)

    def _step(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int = 0) -> torch.Tensor:
        hidden = self._hide(batch, stage, batch_idx)
        reconstructed = self(batch, hidden)
        if hidden.any():
            loss = self.criterion(reconstructed, batch["ts"], hidden)
            getattr(self, f"{stage}_mse").update(
                reconstructed[hidden].float(), batch["ts"][hidden].float()
            )
        else:  # every series of the batch has a single date: nothing to reconstruct
            loss = reconstructed.sum() * 0.0
        if stage == "val":
            target = batch["class"]
            groups = torch.where(target >= 0, target, len(self.groups) - 1)
            self.reports.collect(self, batch, reconstructed.detach(), hidden, groups)
        self.log_loss(stage, loss, int(hidden.sum()))  # the mean is over hidden dates
        return loss

    def _epoch_end(self, stage: str):
        metric = getattr(self, f"{stage}_mse")
        if any(m.update_count for m in metric.values()):
            errors = metric.compute()[f"{stage}/mse"]
            scores = {f"{stage}/mse/{b}": e for b, e in zip(self.bands, errors)}
            scores[f"{stage}/mse"] = errors.mean()
            self.log_dict(scores, sync_dist=True)  # synced by torchmetrics: equal everywhere
            if self.prints_scores():
                print_metrics({k: float(v) for k, v in scores.items()})
        metric.reset()
        self.reports.epoch_end(self, stage)

    def configure_optimizers(self):
        return self._optimizers([{"params": list(self.parameters())}])
