"""TempCNN: 1-D convolutions over a regular time grid (Pelletier et al., 2019).

The paper's model convolves a regularly sampled series: three convolutions of 64 filters,
kernel 5, each with batch norm, ReLU and dropout, then the flattened feature map goes through
a dense layer. cmap's series are irregular, so the encoder first puts each series on a grid
of `n_bins` equal bins of the position range (mean of the valid dates falling in a bin; bins
without a date are filled by linear interpolation between the nearest filled bins, and by the
nearest one at the ends). Padded dates never reach the grid. Output: pooled features [N, D].
"""

from __future__ import annotations

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import Encoder
from cmap.models.encoders.base import require_valid_dates
from cmap.models.layers import mlp
from cmap.models.linked import linked


def regular_grid(
    ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, n_bins: int, span: float
) -> torch.Tensor:
    """ts [N, T, C] at positions [N, T] (valid where mask) -> [N, C, n_bins] on a regular
    grid of [0, span): bin means, empty bins linearly interpolated."""
    n, _, c = ts.shape
    bins = (positions.float() / span * n_bins).long().clamp(0, n_bins - 1)
    bins = torch.where(mask, bins, n_bins)  # padded dates go to a discarded extra bin
    sums = ts.new_zeros(n, n_bins + 1, c).scatter_add_(
        1, bins[..., None].expand(-1, -1, c), ts * mask[..., None]
    )[:, :n_bins]
    counts = ts.new_zeros(n, n_bins + 1).scatter_add_(1, bins, mask.to(ts.dtype))[:, :n_bins]
    filled = counts > 0
    means = sums / counts.clamp(min=1)[..., None]  # [N, G, C]
    index = torch.arange(n_bins, device=ts.device).expand(n, -1)
    before = torch.where(filled, index, -1).cummax(dim=1).values  # nearest filled bin <= b
    after = torch.where(filled, index, n_bins).flip(1).cummin(dim=1).values.flip(1)  # >= b
    before = torch.where(before < 0, after, before)
    after = torch.where(after >= n_bins, before, after)
    gap = (after - before).clamp(min=1)
    weight = ((index - before) / gap).to(ts.dtype)[..., None]  # 0 at `before`, 1 at `after`
    low = means.gather(1, before[..., None].expand(-1, -1, c))
    high = means.gather(1, after[..., None].expand(-1, -1, c))
    return (low + weight * (high - low)).transpose(1, 2)


class TempCNNEncoder(Encoder):
    """Regular grid, then `len(widths)` Conv1d -> BatchNorm -> ReLU -> Dropout blocks, then
    a dense layer (Linear -> BatchNorm -> ReLU -> Dropout) on the flattened map -> [N, D].

    Args:
        in_bands: input bands C (the CLI sets it from the data).
        n_bins: grid length (e.g. 24 for half-monthly bins over a year).
        span: position range covered by the grid, in position units (days: a season's
            length; growing degree days: their seasonal maximum); later positions fall in
            the last bin.
        widths, kernel: filters per convolution and their kernel size (paper: 64 x 3, 5).
        out_dim: width of the dense layer, the output width D (paper: 256).
        dropout_p: dropout after every block (paper: 0.2).
    """

    def __init__(
        self,
        in_bands: int | None = None,
        n_bins: int = 24,
        span: float = 400.0,
        widths: list[int] = [64, 64, 64],  # noqa: B006
        kernel: int = 5,
        out_dim: int = 256,
        dropout_p: float = 0.2,
    ):
        super().__init__()
        in_bands = linked(in_bands, "TempCNNEncoder", "in_bands")
        if n_bins < 1 or span <= 0 or kernel % 2 == 0:
            raise ConfigError(
                f"TempCNNEncoder needs n_bins >= 1, span > 0 and an odd kernel, got "
                f"{n_bins}, {span}, {kernel}"
            )
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_bands, *widths[:-1]], widths):
            layers += [
                nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
                nn.Dropout(dropout_p),
            ]
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Sequential(
            nn.Flatten(), *mlp(widths[-1] * n_bins, [out_dim], "batch", "relu", dropout_p, "block")
        )
        self.in_bands, self.n_bins, self.span = in_bands, n_bins, span
        self.out_dim = out_dim

    def forward(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """ts [N, T, C], positions [N, T], mask [N, T] (True = valid) -> features [N, D]."""
        require_valid_dates(mask)
        if ts.shape[-1] != self.in_bands:
            raise ConfigError(f"TempCNNEncoder expects {self.in_bands} bands, got {ts.shape[-1]}")
        grid = regular_grid(ts, positions, mask, self.n_bins, self.span)  # [N, C, G]
        return self.dense(self.convs(grid))
