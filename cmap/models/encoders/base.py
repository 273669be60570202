"""What every date encoder shares: embedding the valid dates and checking the inputs."""

from __future__ import annotations

import abc

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import BandsEmbedding, Encoder, PositionEmbedding, checked


def require_valid_dates(mask: torch.Tensor) -> None:
    """mask [N, T]: every sample needs at least one valid date."""
    empty = ~mask.any(dim=1)
    if empty.any():
        rows = empty.nonzero()[:, 0].tolist()
        raise ConfigError(
            f"{len(rows)} sample(s) of the batch have no valid date (batch rows {rows[:10]}); "
            "series with every date masked cannot be encoded, drop them from the data"
        )


def mask_attention(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """maps [N, L, T, T] (query, key), mask [N, T] -> maps with padded queries and keys at 0."""
    pad = ~mask
    return maps.masked_fill(pad[:, None, :, None] | pad[:, None, None, :], 0.0)


class DateEmbedding(nn.Module):
    """bands embedding + position embedding of each valid date -> [N, T, D], zeros at padding.

    Both embeddings must produce `d_model` features (checked here, with a message naming the
    block, rather than as a shape error deep inside the first layer).
    """

    def __init__(
        self,
        position_encoder: PositionEmbedding,
        bands_encoder: BandsEmbedding,
        d_model: int,
        dropout_p: float = 0.0,
        owner: str = "encoder",
    ):
        super().__init__()
        checked(bands_encoder, f"{owner}'s bands_encoder")
        checked(position_encoder, f"{owner}'s position_encoder")
        for name, block, width in (
            ("bands_encoder", bands_encoder, bands_encoder.out_dim),
            ("position_encoder", position_encoder, position_encoder.d_model),
        ):
            if width != d_model:
                raise ConfigError(
                    f"{owner}: {name} ({type(block).__name__}) produces width {width} "
                    f"but d_model is {d_model}; make them equal"
                )
        self.position_encoder = position_encoder
        self.bands_encoder = bands_encoder
        self.dropout = nn.Dropout(dropout_p)

    def forward(
        self,
        ts: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        queries: torch.Tensor | None = None,
    ):
        """ts [N, T, C], positions [N, T], mask [N, T] (True = observed) -> [N, T, D].

        `queries` [N, T] (a superset of `mask`): dates that also get a position-only token,
        without any band value (the dates a masked auto-encoder must reconstruct).
        """
        require_valid_dates(mask)
        where = mask if queries is None else queries | mask
        x = self.bands_encoder(ts, mask) + self.position_encoder(positions, where)
        return self.dropout(x)


class LayeredEncoder(Encoder, abc.ABC):
    """Encoders whose `_run(ts, positions, mask, need_weights, queries)` returns the output
    [N, T, D] (zeros at dates neither valid nor queried) and one [N, T, T] map per layer (None
    without `need_weights`); what a map means is the subclass's (see its docstring)."""

    attention = True

    @abc.abstractmethod
    def _run(self, ts, positions, mask, need_weights: bool, queries=None):
        """-> (output [N, T, D], one [N, T, T] map per layer or None per layer)."""

    def forward(
        self,
        ts: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        queries: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ts [N, T, C], positions [N, T], mask [N, T] (True = valid) -> [N, T, D].

        `queries` [N, T]: extra dates with features in the output, computed from their
        position and the valid dates only (they are never attended to), e.g. dates hidden
        for masked reconstruction. Default: the valid dates.
        """
        return self._run(ts, positions, mask, need_weights=False, queries=queries)[0]

    def forward_with_attention(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output [N, T, D] and `get_attention_maps` from one pass (the layers' explicit
        softmax path, slower than `forward` alone but cheaper than both)."""
        out, maps = self._run(ts, positions, mask, need_weights=True)
        return out, mask_attention(torch.stack(maps, dim=1), mask)
