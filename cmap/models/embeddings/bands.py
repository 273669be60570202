"""Bands embeddings: per-date spectral vectors -> model width."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


def _norm(kind: str, width: int) -> nn.Module:
    return {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}.get(kind, lambda _: nn.Identity())(
        width
    )


class PixelEncoding(nn.Module):
    """MLP applied to the C band values of each valid date.

    `in_bands` is the number of bands C (the CLI sets it from the data); `sizes` are the
    widths of the successive layers, the last one being the embedding width D. Hidden layers
    are Linear -> norm -> ReLU; the last layer is linear. Only valid dates go through the
    MLP, so padded dates never reach the batch-norm statistics and cost nothing.
    """

    def __init__(
        self,
        in_bands: int,
        sizes: list[int] = [32, 64, 128, 256],  # noqa: B006 (jsonargparse needs a literal)
        norm: Literal["batch", "layer", "none"] = "batch",
        dropout_p: float = 0.0,
    ):
        super().__init__()
        if in_bands <= 0 or not sizes:
            raise ValueError(f"PixelEncoding needs in_bands > 0 and sizes, got {in_bands}, {sizes}")
        widths = [in_bands, *sizes]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(w_in, w_out))
            if i < len(sizes) - 1:
                layers += [_norm(norm, w_out), nn.ReLU(), nn.Dropout(dropout_p)]
        self.mlp = nn.Sequential(*layers)
        self.in_bands = in_bands
        self.out_dim = sizes[-1]

    def forward(self, ts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ts [N, T, C], mask [N, T] (True = valid) -> [N, T, D], zeros at padded dates."""
        if ts.shape[-1] != self.in_bands:
            raise ValueError(
                f"PixelEncoding expects {self.in_bands} bands per date, the data has {ts.shape[-1]}"
            )
        out = ts.new_zeros(*ts.shape[:-1], self.out_dim)
        out[mask] = self.mlp(ts[mask]).to(out.dtype)
        return out
