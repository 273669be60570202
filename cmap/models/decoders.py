"""Decoders (heads) on top of encoded series.

Encoders return per-date features [N, T, D] (Transformer, Exchanger) or features already
pooled over dates [N, D] (L-TAE). Classification heads accept both: they pool the first kind
over valid dates and use the second as it is.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import ClassificationHead, PoolingHead, ReconstructionHead
from cmap.models.layers import mlp
from cmap.models.linked import linked


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [N, T, D], mask [N, T] (True = valid) -> [N, D], max over valid dates only."""
    return x.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


class MulticlassClassification(ClassificationHead):
    """Masked max pooling over valid dates, then a linear layer to K class logits."""

    def __init__(self, in_dim: int, num_classes: int | None = None, dropout_p: float = 0.0):
        super().__init__()
        num_classes = linked(num_classes, type(self).__name__, "num_classes")
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout_p)
        self.linear = nn.Linear(in_dim, num_classes)

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] -> pooled features [N, D]."""
        return x if x.dim() == 2 else masked_max(x, mask)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features [N, D] -> logits [N, K]."""
        return self.linear(self.dropout(pooled))


class AttentionClassification(MulticlassClassification):
    """Attention pooling: a learned query scores each valid date, the softmax-weighted mean of
    the dates' features goes through a linear layer to K logits.

    The query starts at zero, so training starts from the plain mean over valid dates.
    """

    def __init__(self, in_dim: int, num_classes: int | None = None, dropout_p: float = 0.0):
        super().__init__(in_dim, num_classes, dropout_p)
        self.query = nn.Parameter(torch.zeros(in_dim))

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], mask [N, T] -> weights [N, T], summing to 1 over valid dates."""
        scores = x @ self.query / math.sqrt(self.in_dim)
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] -> pooled features [N, D]."""
        if x.dim() == 2:
            return x
        return torch.einsum("nt,ntd->nd", self.attention(x, mask), x)


class ProjectionHead(PoolingHead):
    """Pools per-date features over valid dates (masked max, as the classification head) and
    projects them with an MLP (hidden `widths[:-1]`, batch norm, ReLU) to `widths[-1]`: the
    space a contrastive objective compares views in."""

    def __init__(self, in_dim: int, widths: list[int] = [256, 128]):  # noqa: B006
        super().__init__()
        if not widths:
            raise ConfigError("ProjectionHead needs at least one width (the output size)")
        self.in_dim = in_dim
        self.mlp = mlp(in_dim, widths, norm="batch")

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] -> pooled features [N, D]."""
        return x if x.dim() == 2 else masked_max(x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] (True = valid) -> projections [N, widths[-1]]."""
        return self.mlp(self.pool(x, mask))


class Reconstruction(ReconstructionHead):
    """Per-date head back to the C bands: an MLP (hidden `widths`, GELU) then a linear layer.

    With `widths` empty it is a single linear layer. Output is zero at padded dates.
    """

    def __init__(
        self,
        in_dim: int,
        out_bands: int | None = None,
        widths: list[int] = [],  # noqa: B006
        dropout_p: float = 0.0,
    ):
        super().__init__()
        out_bands = linked(out_bands, "Reconstruction", "out_bands")
        self.mlp = mlp(in_dim, [*widths, out_bands], activation="gelu", dropout_p=dropout_p)
        self.in_dim = in_dim
        self.out_bands = out_bands

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], mask [N, T] (True = valid) -> reconstructed bands [N, T, C]."""
        if x.dim() != 3:
            raise ConfigError(
                "Reconstruction needs per-date features [N, T, D]; this encoder pools the dates "
                f"(output shape {tuple(x.shape)}), use a Transformer or Exchanger encoder"
            )
        return self.mlp(x).masked_fill(~mask[..., None], 0.0)
