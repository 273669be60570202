"""Lightweight temporal attention encoder (L-TAE): the fast option for very large maps.

After Garnot & Landrieu, 2020, "Lightweight Temporal Self-Attention for Classifying
Satellite Images Time Series": each head has one learned *master query* and a small key
dimension; it attends over the valid dates and returns the attention-weighted sum of its
own slice of the channels. The heads' outputs are concatenated and passed through an MLP.
Cost is O(T D) per series, and the output is already pooled over dates.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import BandsEmbedding, Encoder, PositionEmbedding
from cmap.models.encoders.base import DateEmbedding
from cmap.models.layers import mlp


class LTAEEncoder(Encoder):
    """Bands + position embeddings, then master-query attention pooling -> [N, D_out].

    Args:
        d_model: width of the date embeddings, split into `n_heads` slices of values.
        n_heads: number of heads (master queries).
        d_k: key and query dimension per head (small: 8 in the paper).
        widths: widths of the output MLP (Linear -> BatchNorm -> ReLU each); the last is
            out_dim.
    """

    attention = True

    def __init__(
        self,
        position_encoder: PositionEmbedding,
        bands_encoder: BandsEmbedding,
        d_model: int = 128,
        n_heads: int = 16,
        d_k: int = 8,
        widths: list[int] = [128],  # noqa: B006
        dropout_p: float = 0.1,
    ):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ConfigError(
                f"n_heads ({n_heads}) must be at least 1 and divide d_model ({d_model})"
            )
        self.embedding = DateEmbedding(
            position_encoder, bands_encoder, d_model, dropout_p, "LTAEEncoder"
        )
        self.norm = nn.LayerNorm(d_model)
        self.keys = nn.Linear(d_model, n_heads * d_k)
        self.queries = nn.Parameter(torch.randn(n_heads, d_k) * math.sqrt(2.0 / d_k))
        self.mlp = nn.Sequential(
            *mlp(d_model, widths, "batch", "relu", last="block"), nn.Dropout(dropout_p)
        )
        self.n_heads, self.d_k = n_heads, d_k
        self.d_model = d_model
        self.out_dim = widths[-1] if widths else d_model

    def _attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D], mask [N, T] -> attention of each head over dates [N, H, T]."""
        n, t, _ = x.shape
        keys = self.keys(x).view(n, t, self.n_heads, self.d_k)
        scores = torch.einsum("nthk,hk->nht", keys, self.queries) / math.sqrt(self.d_k)
        return scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=-1)

    def forward(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """ts [N, T, C], positions [N, T], mask [N, T] (True = valid) -> pooled [N, D_out]."""
        return self.forward_with_attention(ts, positions, mask)[0]

    def forward_with_attention(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled output [N, D_out] and the master queries' attention averaged over heads
        [N, 1, 1, T] (one layer, one query; sums to 1 over valid dates, 0 at padding)."""
        x = self.norm(self.embedding(ts, positions, mask))
        attention = self._attention(x, mask)  # [N, H, T]
        n, t, d = x.shape
        values = x.view(n, t, self.n_heads, d // self.n_heads)
        pooled = torch.einsum("nht,nthv->nhv", attention, values).reshape(n, d)
        return self.mlp(pooled), attention.mean(dim=1)[:, None, None, :]
