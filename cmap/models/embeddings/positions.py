"""Position embeddings: where each date lies in the season (days or growing degree days)."""

from __future__ import annotations

import math

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import PositionEmbedding


def frequencies(d_model: int, tau: float) -> torch.Tensor:
    """[D / 2] angular frequencies tau^(-2i/D) of the sinusoidal encoding (Vaswani et al., 2017)."""
    if d_model % 2:
        raise ConfigError(f"sinusoidal position encodings need an even d_model, got {d_model}")
    return torch.exp(-math.log(tau) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)


def sinusoids(positions: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """positions [...], freqs [D / 2] -> [..., D]: sin at even channels, cos at odd ones."""
    angles = positions[..., None] * freqs
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def sinusoid_table(length: int, d_model: int, tau: float) -> torch.Tensor:
    """[length, D] sine/cosine table of the integer positions 0 .. length - 1."""
    positions = torch.arange(length, dtype=torch.float64)
    return sinusoids(positions, frequencies(d_model, tau)).float()


def check_integer(owner: nn.Module, positions: torch.Tensor) -> None:
    """Lookup tables need whole days; real-valued positions are thermal time."""
    if positions.is_floating_point():
        raise ConfigError(
            f"{type(owner).__name__} takes whole-day positions but got real values (growing "
            "degree days, from the data's positions: gdd); use ThermalPositionalEncoding"
        )


def check_range(owner: nn.Module, positions: torch.Tensor, mask: torch.Tensor, limit: float):
    """Positions at valid dates must lie in [0, limit): a clear error instead of an index error."""
    valid = positions[mask]
    if valid.numel() and (valid.min() < 0 or valid.max() >= limit):
        raise ConfigError(
            f"{type(owner).__name__} got positions in [{valid.min().item():g}, "
            f"{valid.max().item():g}] but accepts [0, {limit:g}); raise max_len or shorten the "
            "season"
        )


class PositionalEncoding(PositionEmbedding):
    """Sinusoidal embedding of integer positions (days since season start).

    Row 0 of the table is reserved for padding (zeros): position p is looked up at row p + 1,
    so day 0 of the season keeps a proper embedding. Positions must lie in [0, max_len).
    """

    def __init__(self, d_model: int, tau: float = 10000.0, max_len: int = 1000):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        table = torch.cat([torch.zeros(1, d_model), sinusoid_table(max_len, d_model, tau)])
        self.register_buffer("table", table, persistent=False)

    def forward(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """positions [N, T] int, mask [N, T] (True = valid) -> [N, T, D], zeros at padding."""
        check_integer(self, positions)
        positions = positions.long()
        check_range(self, positions, mask, self.max_len)
        return self.table[torch.where(mask, positions + 1, 0)]


class LearnedPositionalEncoding(PositionEmbedding):
    """A learned vector per integer position (index 0 = padding, kept at zero)."""

    def __init__(self, d_model: int, max_len: int = 1000):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.table = nn.Embedding(max_len + 1, d_model, padding_idx=0)
        nn.init.normal_(self.table.weight, std=0.02)
        with torch.no_grad():
            self.table.weight[0].zero_()

    def forward(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """positions [N, T] int, mask [N, T] (True = valid) -> [N, T, D], zeros at padding."""
        check_integer(self, positions)
        positions = positions.long()
        check_range(self, positions, mask, self.max_len)
        return self.table(torch.where(mask, positions + 1, 0))


class ThermalPositionalEncoding(PositionEmbedding):
    """Sinusoidal embedding of continuous thermal time (growing degree days, degC.day).

    Crops develop with accumulated heat, so GDD positions carry a model across warm and cold
    seasons (Nyborg et al., 2022, thermal positional encoding). The encoding is computed
    on the fly from the real-valued position divided by `scale` (degC.day per unit step; the
    default 10 maps a season's 0-4000 degC.day onto about the 0-400 range of day positions),
    with no rounding or lookup table. Positions must lie in [0, max_value).
    """

    positions = "gdd"

    def __init__(
        self, d_model: int, tau: float = 10000.0, scale: float = 10.0, max_value: float = 10000.0
    ):
        super().__init__()
        if scale <= 0:
            raise ConfigError(f"ThermalPositionalEncoding needs scale > 0, got {scale}")
        self.d_model = d_model
        self.scale = scale
        self.max_len = max_value
        self.register_buffer("freqs", frequencies(d_model, tau).float(), persistent=False)

    def forward(self, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """positions [N, T] float (GDD), mask [N, T] (True = valid) -> [N, T, D], 0 at padding."""
        if not positions.is_floating_point():
            raise ConfigError(
                "ThermalPositionalEncoding takes growing degree days but got whole days: set "
                "the data's positions: gdd (with its temperature, or a cube's weather)"
            )
        check_range(self, positions, mask, self.max_len)
        out = sinusoids(positions.float() / self.scale, self.freqs)
        return out.masked_fill(~mask[..., None], 0.0)
