"""Decoders (heads) on top of encoded series."""

from __future__ import annotations

import torch
from torch import nn


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [N, T, D], mask [N, T] (True = valid) -> [N, D], max over valid dates only."""
    return x.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


class MulticlassClassification(nn.Module):
    """Masked max pooling over valid dates, then a linear layer to K class logits."""

    def __init__(self, hidden: int, num_classes: int, dropout_p: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout_p)
        self.linear = nn.Linear(hidden, num_classes)

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], mask [N, T] -> pooled features [N, D]."""
        return masked_max(x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], mask [N, T] (True = valid) -> logits [N, K]."""
        return self.linear(self.dropout(self.pool(x, mask)))
