"""Transformer encoder over the dates of a series."""

from __future__ import annotations

import torch
from torch import nn

from cmap.models.encoders.base import DateEmbedding


class TransformerEncoder(nn.Module):
    """Bands embedding + position embedding, then `n_att_layers` self-attention layers.

    Built on PyTorch's `nn.TransformerEncoder` (batch first, key padding mask), so training
    runs scaled-dot-product attention and inference the fused fast path; recording attention
    is a separate method and costs nothing during training.
    """

    def __init__(
        self,
        position_encoder: nn.Module,
        bands_encoder: nn.Module,
        d_model: int = 256,
        n_att_head: int = 8,
        n_att_layers: int = 4,
        dropout_p: float = 0.1,
        dim_feedforward: int | None = None,
        norm_first: bool = False,
    ):
        super().__init__()
        if d_model % n_att_head:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_att_head ({n_att_head})")
        self.embedding = DateEmbedding(
            position_encoder, bands_encoder, d_model, dropout_p, "TransformerEncoder"
        )
        self.d_model = self.out_dim = d_model
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_att_head,
            dim_feedforward or 4 * d_model,
            dropout_p,
            batch_first=True,
            norm_first=norm_first,
        )
        self.encoder = nn.TransformerEncoder(
            layer,
            n_att_layers,
            norm=nn.LayerNorm(d_model) if norm_first else None,
            enable_nested_tensor=False,
        )

    def forward(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """ts [N, T, C], positions [N, T], mask [N, T] (True = valid) -> [N, T, D]."""
        x = self.encoder(self.embedding(ts, positions, mask), src_key_padding_mask=~mask)
        return x.masked_fill(~mask[..., None], 0.0)

    @torch.no_grad()
    def get_attention_maps(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention of each layer averaged over heads -> [N, L, T, T] (query, key).

        Recomputed layer by layer with `need_weights`; padded keys get exactly 0, and so do
        the rows of padded queries.
        """
        x = self.embedding(ts, positions, mask)
        pad = ~mask
        maps = []
        for layer in self.encoder.layers:
            h = layer.norm1(x) if layer.norm_first else x
            _, weights = layer.self_attn(
                h, h, h, key_padding_mask=pad, need_weights=True, average_attn_weights=True
            )
            maps.append(weights.masked_fill(pad[:, :, None] | pad[:, None, :], 0.0))
            x = layer(x, src_key_padding_mask=pad)
        return torch.stack(maps, dim=1)
