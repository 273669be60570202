"""Bands embeddings: the C band values of each date -> a D-wide vector."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import BandsEmbedding
from cmap.models.layers import Activation, Norm, make_activation, mlp
from cmap.models.linked import linked


def check_bands(owner: nn.Module, ts: torch.Tensor, in_bands: int) -> None:
    if ts.shape[-1] != in_bands:
        raise ConfigError(
            f"{type(owner).__name__} expects {in_bands} bands per date, the data has {ts.shape[-1]}"
        )


def scatter_valid(fn, ts: torch.Tensor, mask: torch.Tensor, out_dim: int) -> torch.Tensor:
    """Apply `fn` ([M, C] -> [M, D]) to valid dates only -> [N, T, D], zeros at padding.

    Padded dates never reach `fn`, so their values cannot leak into batch statistics.
    """
    out = ts.new_zeros(*ts.shape[:-1], out_dim)
    out[mask] = fn(ts[mask]).to(out.dtype)
    return out


class PixelEncoding(BandsEmbedding):
    """MLP applied to the C band values of each valid date.

    `in_bands` is the number of bands C (the CLI sets it from the data); `widths` are the
    widths of the successive layers, the last one being the embedding width D. Hidden layers
    are Linear -> norm -> activation -> dropout; the last layer is linear.
    """

    def __init__(
        self,
        in_bands: int | None = None,
        widths: list[int] = [32, 64, 128, 256],  # noqa: B006 (jsonargparse needs a literal)
        norm: Norm = "batch",
        activation: Activation = "relu",
        dropout_p: float = 0.0,
    ):
        super().__init__()
        in_bands = linked(in_bands, "PixelEncoding", "in_bands")
        if in_bands <= 0 or not widths:
            raise ConfigError(
                f"PixelEncoding needs in_bands > 0 and widths, got {in_bands}, {widths}"
            )
        self.mlp = mlp(in_bands, widths, norm, activation, dropout_p)
        self.in_bands = in_bands
        self.out_dim = widths[-1]

    def forward(self, ts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ts [N, T, C], mask [N, T] (True = valid) -> [N, T, D], zeros at padded dates."""
        check_bands(self, ts, self.in_bands)
        return scatter_valid(self.mlp, ts, mask, self.out_dim)


class PatchBandsEncoding(BandsEmbedding):
    """1-D convolutions along the band axis of each date, then a linear projection.

    The C band values of a date are read as a 1-channel signal of length C (bands in spectral
    order, so neighbouring bands are neighbouring wavelengths). Each convolution (no padding)
    is followed by the activation and the norm; the feature map [widths[-1], C'] is
    flattened and projected to `out_dim`. This is the convolutional bands embedding of the
    seed project, with the flattened size computed from `in_bands`.
    """

    def __init__(
        self,
        in_bands: int | None = None,
        widths: list[int] = [32, 64],  # noqa: B006
        kernels: list[int] = [3, 3],  # noqa: B006
        out_dim: int = 256,
        norm: Literal["batch", "none"] = "batch",
        activation: Activation = "relu",
    ):
        super().__init__()
        in_bands = linked(in_bands, "PatchBandsEncoding", "in_bands")
        if len(widths) != len(kernels) or not widths:
            raise ConfigError(
                f"PatchBandsEncoding needs one kernel per conv layer, got widths {widths} "
                f"and kernels {kernels}"
            )
        length = in_bands - sum(k - 1 for k in kernels)
        if length < 1:
            raise ConfigError(
                f"PatchBandsEncoding: kernels {kernels} are too wide for {in_bands} bands "
                "(each kernel k shortens the band axis by k - 1); use smaller kernels"
            )
        layers: list[nn.Module] = []
        for c_in, c_out, k in zip([1, *widths[:-1]], widths, kernels):
            layers += [
                nn.Conv1d(c_in, c_out, k),
                make_activation(activation),
                nn.BatchNorm1d(c_out) if norm == "batch" else nn.Identity(),
            ]
        self.convs = nn.Sequential(*layers)
        self.project = nn.Linear(widths[-1] * length, out_dim)
        self.in_bands = in_bands
        self.out_dim = out_dim

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, C] -> [M, D]."""
        return self.project(self.convs(x[:, None, :]).flatten(1))

    def forward(self, ts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ts [N, T, C], mask [N, T] (True = valid) -> [N, T, D], zeros at padded dates."""
        check_bands(self, ts, self.in_bands)
        return scatter_valid(self._encode, ts, mask, self.out_dim)
