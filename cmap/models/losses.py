"""Losses: focal loss for classification, masked MSE for reconstruction, NT-Xent and Barlow
Twins for multi-view self-supervision."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from cmap.errors import ConfigError
from cmap.models.base import Loss

Reduction = Literal["mean", "sum", "none"]


class FocalLoss(Loss):
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_t)^gamma.

    `alpha` weighs the classes: a list gives one weight per class (the paper's alpha_t, kept
    in the `weight` buffer, which the Classifier fills from `classes_weights`), a float scales
    every sample alike. With per-class weights the mean is taken over the weights, as in
    `nn.CrossEntropyLoss`, so gamma = 0 gives exactly cross-entropy.

    `logit_adjustment` tau > 0 trains with the logit-adjusted loss of Menon et al. (2021,
    "Long-tail learning via logit adjustment"): tau * log(prior) is added to the logits
    inside the loss only, so the model's own logits (used to predict) aim at the balanced
    error, not at the frequent classes. The class `prior` buffer is filled by the Classifier
    from the training counts when training starts (and saved in checkpoints).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | list[float] | None = None,
        reduction: Reduction = "mean",
        logit_adjustment: float = 0.0,
    ):
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"FocalLoss needs gamma >= 0, got {gamma}")
        if logit_adjustment < 0:
            raise ConfigError(f"FocalLoss needs logit_adjustment >= 0, got {logit_adjustment}")
        self.logit_adjustment = logit_adjustment
        self.register_buffer("prior", None)
        self.gamma = gamma
        self.scale = float(alpha) if isinstance(alpha, (int, float)) else 1.0
        per_class = torch.tensor(alpha, dtype=torch.float32) if isinstance(alpha, list) else None
        self.register_buffer("weight", per_class)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits [N, K], target [N] int -> scalar ([N] with reduction "none")."""
        if self.weight is not None and len(self.weight) != logits.shape[-1]:
            raise ConfigError(
                f"FocalLoss has {len(self.weight)} class weights but the model has "
                f"{logits.shape[-1]} classes"
            )
        logits = logits.float()
        if self.logit_adjustment:
            if self.prior is None:
                raise ConfigError("FocalLoss: logit_adjustment needs the class prior (training)")
            logits = logits + self.logit_adjustment * self.prior.log()
        log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None])[:, 0]
        loss = -self.scale * (1 - log_p.exp()) ** self.gamma * log_p
        w = None if self.weight is None else self.weight.to(loss.dtype)[target]
        if w is not None:
            loss = w * loss
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        return loss.mean() if w is None else loss.sum() / w.sum()


class MaskedMSE(Loss):
    """Mean squared error over the selected dates only (e.g. the dates hidden from the model).

    `reduction="none"` returns the mean error per band [C], for per-band reports.
    """

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, selected: torch.Tensor
    ) -> torch.Tensor:
        """prediction [N, T, C], target [N, T, C], selected [N, T] bool -> scalar ([C] if none)."""
        if not selected.any():
            raise ConfigError("MaskedMSE: no date is selected, the loss is undefined")
        errors = (prediction[selected].float() - target[selected].float()) ** 2  # [M, C]
        if self.reduction == "none":
            return errors.mean(dim=0)
        return errors.sum() if self.reduction == "sum" else errors.mean()


class NTXent(Loss):
    """Normalised temperature-scaled cross-entropy (SimCLR, Chen et al. 2020) over V >= 2
    views: each embedding's positives are the other views of its series, its negatives every
    other series' views in the batch; with several positives their log-likelihoods are
    averaged (Khosla et al. 2020)."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"NTXent needs temperature > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Projections z [V, N, P] -> scalar."""
        v, n, _ = z.shape
        z = F.normalize(z.float().reshape(v * n, -1), dim=1)
        similarity = (z @ z.T / self.temperature).fill_diagonal_(float("-inf"))
        log_p = similarity.log_softmax(dim=1)  # [VN, VN], an embedding never pairs itself
        series = torch.arange(v * n, device=z.device) % n
        positive = (series[:, None] == series[None, :]).fill_diagonal_(False)
        return -(log_p.masked_fill(~positive, 0).sum(dim=1) / (v - 1)).mean()


class BarlowTwins(Loss):
    """Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views' standardised
    projections is pushed to the identity, on-diagonal terms to 1 and off-diagonal ones to 0
    with weight `off_diagonal`; averaged over the pairs of V views."""

    def __init__(self, off_diagonal: float = 5e-3):
        super().__init__()
        self.off_diagonal = off_diagonal

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Projections z [V, N, P] (N >= 2) -> scalar."""
        v, n, _ = z.shape
        if n < 2:
            raise ConfigError("BarlowTwins needs at least 2 series per batch")
        z = z.float()
        z = (z - z.mean(dim=1, keepdim=True)) / z.std(dim=1, keepdim=True).clamp(min=1e-6)
        losses = []
        for a in range(v):
            for b in range(a + 1, v):
                c = z[a].T @ z[b] / n  # [P, P]
                on = (torch.diagonal(c) - 1).pow(2).sum()
                losses.append(
                    on + self.off_diagonal * (c.pow(2).sum() - torch.diagonal(c).pow(2).sum())
                )
        return torch.stack(losses).mean()
