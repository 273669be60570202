"""Position embeddings: where each date lies in the season."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_table(length: int, d_model: int, tau: float) -> torch.Tensor:
    """[length, D] sine/cosine table (Vaswani et al., 2017), frequencies tau^(-2i/D)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    frequencies = torch.exp(
        -math.log(tau) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model
    )
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequencies)
    table[:, 1::2] = torch.cos(position * frequencies[: d_model // 2])
    return table.float()


class PositionalEncoding(nn.Module):
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
        positions = positions.long()
        valid = positions[mask]
        if valid.numel() and (valid.min() < 0 or valid.max() >= self.max_len):
            raise ValueError(
                f"PositionalEncoding got positions in [{int(valid.min())}, {int(valid.max())}] "
                f"but max_len is {self.max_len}; raise max_len or shorten the season window"
            )
        index = torch.where(mask, positions + 1, torch.zeros_like(positions))
        return self.table[index]
