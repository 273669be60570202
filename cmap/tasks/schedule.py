"""Optimizer and learning-rate schedule shared by the tasks."""

from __future__ import annotations

import torch


def warmup_exponential(
    epoch: int, min_lr: float, max_lr: float, warmup_epochs: int, lr_decay: float
) -> float:
    """Learning rate at `epoch`: linear from min_lr to max_lr over `warmup_epochs`, then
    max_lr * lr_decay^(epoch - warmup_epochs), never below min_lr."""
    if epoch < warmup_epochs:
        return min_lr + (max_lr - min_lr) * (epoch + 1) / warmup_epochs
    return max(max_lr * lr_decay ** (epoch - warmup_epochs), min_lr)


def adamw_warmup_exponential(
    groups: list[dict], min_lr: float, max_lr: float, warmup_epochs: int, lr_decay: float, wd: float
) -> dict:
    """AdamW over parameter `groups` (dicts with `params`, optional `name` and `lr_factor`, which
    scales the whole schedule of that group) with the `warmup_exponential` schedule."""
    groups = [
        {k: v for k, v in g.items() if k != "lr_factor"} | {"lr": max_lr * g.get("lr_factor", 1.0)}
        for g in groups
        if g["params"]
    ]
    optimizer = torch.optim.AdamW(groups, lr=max_lr, weight_decay=wd)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda e: warmup_exponential(e, min_lr, max_lr, warmup_epochs, lr_decay) / max_lr,
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
