"""Learning-rate schedule shared by the tasks."""

from __future__ import annotations


def warmup_exponential(
    epoch: int, min_lr: float, max_lr: float, warmup_epochs: int, gamma: float
) -> float:
    """Learning rate at `epoch`: linear from min_lr to max_lr over `warmup_epochs`, then
    max_lr * gamma^(epoch - warmup_epochs), never below min_lr."""
    if epoch < warmup_epochs:
        return min_lr + (max_lr - min_lr) * (epoch + 1) / warmup_epochs
    return max(max_lr * gamma ** (epoch - warmup_epochs), min_lr)
