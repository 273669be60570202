"""The kinds of blocks a model is assembled from. Each is the type a task or an encoder
declares for its argument, so the CLI lists (and accepts by short name) the blocks of that
kind; a block of your own subclasses the kind it plays and keeps its `forward` contract."""

from __future__ import annotations

from torch import nn


class BandsEmbedding(nn.Module):
    """Spectral embedding of each date: forward(ts [N, T, C], mask [N, T]) -> [N, T, D], zeros
    at padded dates; `out_dim` = D."""


class PositionEmbedding(nn.Module):
    """Embedding of date positions (days or growing degree days): forward(positions [N, T],
    mask [N, T]) -> [N, T, D], zeros at padded dates; `d_model` = D. `positions` names what
    it takes, as the data modules' `positions` argument does ("days" or "gdd")."""

    positions = "days"


class Encoder(nn.Module):
    """forward(ts [N, T, C], positions [N, T], mask [N, T]) -> per-date features [N, T, D] or
    features pooled over dates [N, D]; `out_dim` = D. Optional `forward_with_attention`
    (output and attention maps [N, L, T, T]) feeds the attention figures."""


class Head(nn.Module):
    """A decoder on encoded series: forward(x [N, T, D] or [N, D], mask [N, T]) -> logits
    [N, K] (classification) or values [N, T, C] (reconstruction)."""


class Loss(nn.Module):
    """A training objective; what `forward` takes is the task's (see its `criterion`)."""
