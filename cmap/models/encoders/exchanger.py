"""Exchanger encoder: dates talk to each other through a few learned tokens.

After Cai et al., 2023, "Rethinking the encoding of satellite image time series": instead of
all-pairs self-attention over dates (cost T^2), each "GP block" lets M << T learned tokens
*collect* information from the valid dates (cross-attention, tokens as queries), *update*
themselves (self-attention among tokens and an MLP), then *distribute* it back to the dates
(cross-attention, dates as queries), followed by a per-date MLP. Cost is linear in T, and
irregular or missing dates need nothing more than the key padding mask of the collect step.
"""

from __future__ import annotations

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import BandsEmbedding, PositionEmbedding
from cmap.models.encoders.base import DateEmbedding, LayeredEncoder
from cmap.models.layers import mlp


def _mlp(d_model: int, ratio: float, dropout_p: float) -> nn.Sequential:
    """[.., D] -> [.., D] through int(D x ratio) GELU units."""
    return mlp(d_model, [int(d_model * ratio), d_model], activation="gelu", dropout_p=dropout_p)


class GPBlock(nn.Module):
    """One collect-update-distribute step between tokens [N, M, D] and dates [N, T, D].

    Pre-norm residual sub-layers; attention uses PyTorch's scaled-dot-product path unless
    weights are asked for.
    """

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float = 4.0, dropout_p: float = 0.1):
        super().__init__()

        def attention():
            return nn.MultiheadAttention(d_model, n_heads, dropout=dropout_p, batch_first=True)

        self.collect_norm_tokens = nn.LayerNorm(d_model)
        self.collect_norm_dates = nn.LayerNorm(d_model)
        self.collect = attention()
        self.update_norm = nn.LayerNorm(d_model)
        self.update = attention()
        self.token_mlp_norm = nn.LayerNorm(d_model)
        self.token_mlp = _mlp(d_model, mlp_ratio, dropout_p)
        self.distribute_norm_dates = nn.LayerNorm(d_model)
        self.distribute_norm_tokens = nn.LayerNorm(d_model)
        self.distribute = attention()
        self.date_mlp_norm = nn.LayerNorm(d_model)
        self.date_mlp = _mlp(d_model, mlp_ratio, dropout_p)
        self.dropout = nn.Dropout(dropout_p)

    def forward(
        self, tokens: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """tokens [N, M, D], x [N, T, D], mask [N, T] (True = valid) -> tokens, x, weights.

        weights (with `need_weights`): date-to-date attention through the tokens [N, T, T],
        the product of distribute [N, T, M] and collect [N, M, T], averaged over heads.
        """
        dates = self.collect_norm_dates(x)
        q = self.collect_norm_tokens(tokens)
        gathered, collect_w = self.collect(
            q, dates, dates, key_padding_mask=~mask, need_weights=need_weights
        )
        tokens = tokens + self.dropout(gathered)
        h = self.update_norm(tokens)
        tokens = tokens + self.dropout(self.update(h, h, h, need_weights=False)[0])
        tokens = tokens + self.dropout(self.token_mlp(self.token_mlp_norm(tokens)))
        t = self.distribute_norm_tokens(tokens)
        spread, distribute_w = self.distribute(
            self.distribute_norm_dates(x), t, t, need_weights=need_weights
        )
        x = x + self.dropout(spread)
        x = x + self.dropout(self.date_mlp(self.date_mlp_norm(x)))
        weights = distribute_w @ collect_w if need_weights else None
        return tokens, x, weights


class ExchangerEncoder(LayeredEncoder):
    """Bands + position embeddings, then `n_layers` GP blocks sharing `n_tokens` learned tokens.

    Output: per-date features [N, T, D] (zeros at padded dates), so any head applies.
    Attention maps: the date-to-date attention through the tokens of each block (distribute
    x collect, averaged over heads).
    """

    def __init__(
        self,
        position_encoder: PositionEmbedding,
        bands_encoder: BandsEmbedding,
        d_model: int = 128,
        n_tokens: int = 8,
        n_heads: int = 8,
        n_layers: int = 2,
        mlp_ratio: float = 4.0,
        dropout_p: float = 0.1,
    ):
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ConfigError(
                f"n_heads ({n_heads}) must be at least 1 and divide d_model ({d_model})"
            )
        if n_tokens < 1 or n_layers < 1:
            raise ConfigError(
                f"ExchangerEncoder needs n_tokens and n_layers >= 1, got {n_tokens}, {n_layers}"
            )
        self.embedding = DateEmbedding(
            position_encoder, bands_encoder, d_model, dropout_p, "ExchangerEncoder"
        )
        self.tokens = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.blocks = nn.ModuleList(
            GPBlock(d_model, n_heads, mlp_ratio, dropout_p) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.d_model = self.out_dim = d_model

    def _run(self, ts, positions, mask, need_weights: bool, queries=None):
        x = self.embedding(ts, positions, mask, queries)
        tokens = self.tokens.expand(len(x), -1, -1)
        maps = []
        for block in self.blocks:
            tokens, x, weights = block(tokens, x, mask, need_weights)
            maps.append(weights)
        out = mask if queries is None else queries | mask
        return self.norm(x).masked_fill(~out[..., None], 0.0), maps
