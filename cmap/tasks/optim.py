"""cmap's default optimizer and learning-rate schedule; any other is named in YAML as the
tasks' `optimizer` and `lr_scheduler` (the LightningCLI way)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_exponential(
    epoch: int, min_lr: float, max_lr: float, warmup_epochs: int, decay: float
) -> float:
    """Learning rate at `epoch`: linear from min_lr to max_lr over `warmup_epochs`, then
    max_lr * decay^(epoch - warmup_epochs), never below min_lr."""
    if epoch < warmup_epochs:
        return min_lr + (max_lr - min_lr) * (epoch + 1) / warmup_epochs
    return max(max_lr * decay ** (epoch - warmup_epochs), min_lr)


class AdamW(torch.optim.AdamW):
    """`torch.optim.AdamW` with cmap's defaults (weight decay 1e-4)."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 1e-4):
        super().__init__(params, lr=lr, weight_decay=weight_decay)


class WarmupExponentialLR(LambdaLR):
    """Per epoch: linear warm-up from `min_lr` to the optimizer's `lr` over `warmup_epochs`,
    then exponential decay by `decay` per epoch, floored at `min_lr`. Parameter groups with
    their own `lr` (e.g. the Classifier's `encoder_lr_factor`) follow the same curve scaled
    by their `lr` over the optimizer's."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        min_lr: float = 1e-5,
        warmup_epochs: int = 5,
        decay: float = 0.95,
        last_epoch: int = -1,
    ):
        peak = optimizer.defaults["lr"]
        self.min_lr, self.warmup_epochs, self.decay = min_lr, warmup_epochs, decay
        super().__init__(
            optimizer,
            lambda e: warmup_exponential(e, min_lr, peak, warmup_epochs, decay) / peak,
            last_epoch,
        )
