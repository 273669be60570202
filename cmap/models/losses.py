"""Classification losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_t)^gamma.

    `alpha` holds optional per-class weights (the paper's alpha_t), stored in the `weight`
    buffer, which the Classifier fills from `classes_weights`. With weights, the mean is
    taken over the weights as in `nn.CrossEntropyLoss`; gamma = 0 gives cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, alpha: list[float] | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", None if alpha is None else torch.tensor(alpha))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits [N, K], target [N] int -> scalar."""
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None])[:, 0]
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is None:
            return loss.mean()
        w = self.weight.to(loss.dtype)[target]
        return (w * loss).sum() / w.sum()
