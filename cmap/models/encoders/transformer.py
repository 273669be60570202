"""Transformer encoder over the dates of a series."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import BandsEmbedding, PositionEmbedding
from cmap.models.encoders.base import DateEmbedding, LayeredEncoder

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class SelfAttentionLayer(nn.Module):
    """One Transformer layer over the dates: self-attention then a feed-forward network.

    Attention runs through `F.scaled_dot_product_attention` on batch-first tensors (fused
    kernels on CPU and GPU, no transposes or mask conversions), with padded dates masked out
    as keys. `need_weights=True` takes an explicit softmax path that also returns the
    attention weights; both paths give the same output.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dim_feedforward: int,
        dropout_p: float = 0.1,
        attention_dropout_p: float = 0.0,
        norm_first: bool = False,
        activation: Literal["relu", "gelu"] = "relu",
    ):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ConfigError(
                f"n_heads ({n_heads}) must be at least 1 and divide d_model ({d_model})"
            )
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff_in = nn.Linear(d_model, dim_feedforward)
        self.ff_out = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout_p)
        self.n_heads = n_heads
        self.attention_dropout_p = attention_dropout_p
        self.norm_first = norm_first
        self.activation = _ACTIVATIONS[activation]

    def attend(
        self, x: torch.Tensor, keys: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, T, D], keys [N, 1, 1, T] (True = valid) -> [N, T, D], weights [N, T, T]."""
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        weights = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads)
            attention = scores.masked_fill(~keys, float("-inf")).softmax(dim=-1)  # [N, H, T, T]
            out = attention @ v
            weights = attention.mean(dim=1)
        else:
            p = self.attention_dropout_p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=p)
        return self.out(out.transpose(1, 2).reshape(n, t, d)), weights

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff_out(self.activation(self.ff_in(x)))

    def forward(
        self, x: torch.Tensor, keys: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, T, D], keys [N, 1, 1, T] (True = valid) -> [N, T, D], weights or None."""
        if self.norm_first:
            attended, weights = self.attend(self.norm1(x), keys, need_weights)
            x = x + self.dropout(attended)
            return x + self.dropout(self.feed_forward(self.norm2(x))), weights
        attended, weights = self.attend(x, keys, need_weights)
        x = self.norm1(x + self.dropout(attended))
        return self.norm2(x + self.dropout(self.feed_forward(x))), weights


class TransformerEncoder(LayeredEncoder):
    """Bands embedding + position embedding, then `n_layers` self-attention layers.

    Post-norm layers as in Vaswani et al. (2017) and the seed project, or pre-norm
    (`norm_first`, with a final LayerNorm). `attention_dropout_p` drops attention weights
    (0 by default: it keeps the fused attention kernels, and costs a third of a CPU training
    step otherwise). Recording attention is a separate method and costs nothing in training;
    its maps are each layer's attention averaged over heads.
    """

    def __init__(
        self,
        position_encoder: PositionEmbedding,
        bands_encoder: BandsEmbedding,
        d_model: int = 256,
        n_heads: int = 8,
        n_layers: int = 4,
        dropout_p: float = 0.1,
        dim_feedforward: int | None = None,
        norm_first: bool = False,
        attention_dropout_p: float = 0.0,
        activation: Literal["relu", "gelu"] = "relu",
    ):
        super().__init__()
        self.embedding = DateEmbedding(
            position_encoder, bands_encoder, d_model, dropout_p, "TransformerEncoder"
        )
        self.layers = nn.ModuleList(
            SelfAttentionLayer(
                d_model,
                n_heads,
                dim_feedforward or 4 * d_model,
                dropout_p,
                attention_dropout_p,
                norm_first,
                activation,
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.d_model = self.out_dim = d_model

    def _run(self, ts, positions, mask, need_weights: bool, queries=None):
        x = self.embedding(ts, positions, mask, queries)
        keys = mask[:, None, None, :]
        maps = []
        for layer in self.layers:
            x, weights = layer(x, keys, need_weights)
            maps.append(weights)
        out = mask if queries is None else queries | mask
        return self.norm(x).masked_fill(~out[..., None], 0.0), maps
