"""Building blocks shared by the model blocks: one activation and norm table, one MLP."""

from __future__ import annotations

from typing import Literal

from torch import nn

Norm = Literal["batch", "layer", "none"]
Activation = Literal["relu", "gelu", "silu"]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def make_norm(kind: Norm, width: int) -> nn.Module:
    """Normalisation of [M, width] features."""
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def make_activation(kind: Activation) -> nn.Module:
    return ACTIVATIONS[kind]()


def mlp(
    in_dim: int,
    widths: list[int],
    norm: Norm = "none",
    activation: Activation = "relu",
    dropout_p: float = 0.0,
    last: Literal["linear", "block"] = "linear",
) -> nn.Sequential:
    """Linear layers of `widths` from `in_dim`: each is Linear -> norm (none: left out) ->
    activation -> dropout, except the last, which is a plain Linear when `last` is "linear".
    [M, in_dim] -> [M, widths[-1]] (empty `widths`: the identity)."""
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip([in_dim, *widths[:-1]], widths)):
        layers.append(nn.Linear(w_in, w_out))
        if i < len(widths) - 1 or last == "block":
            if norm != "none":
                layers.append(make_norm(norm, w_out))
            layers += [make_activation(activation), nn.Dropout(dropout_p)]
    return nn.Sequential(*layers)
