"""The kinds of blocks a model is assembled from. Each is the type a task or an encoder
declares for its argument, so the CLI lists (and accepts by short name) the blocks of that
kind. A kind declares what its callers read (`contract`: attribute -> meaning); a block of
your own subclasses the kind it plays, sets those attributes in `__init__` and keeps the
`forward` contract. The task or encoder it is given to refuses it when one is missing."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from cmap.errors import ConfigError


class Block(nn.Module):
    """A model block of some kind; `contract` names the attributes every instance has."""

    contract: ClassVar[dict[str, str]] = {}


def checked(block: nn.Module, role: str) -> nn.Module:
    """`block`, taken as the `role` argument of a task or an encoder: refused in one line when
    it lacks an attribute its kind declares (a plain `nn.Module` built in Python is taken as it
    is)."""
    if isinstance(block, Block):
        missing = [name for name in block.contract if not hasattr(block, name)]
        if missing:
            cls = type(block)
            kind = next(k for k in cls.__mro__ if "contract" in k.__dict__).__name__
            wanted = "; ".join(f"`{name}` ({block.contract[name]})" for name in missing)
            article = "an" if kind[0] in "AEIOU" else "a"
            raise ConfigError(
                f"{role}: {cls.__name__} ({article} {kind}) must set {wanted} in its __init__"
            )
    return block


class BandsEmbedding(Block):
    """Spectral embedding of each date: forward(ts [N, T, C], mask [N, T]) -> [N, T, D], zeros
    at padded dates."""

    contract = {"out_dim": "the width D of its output"}
    out_dim: int


class PositionEmbedding(Block):
    """Embedding of date positions (days or growing degree days): forward(positions [N, T],
    mask [N, T]) -> [N, T, D], zeros at padded dates. `positions` names what it takes, as the
    data modules' `positions` argument does ("days" or "gdd")."""

    contract = {"d_model": "the width D of its output"}
    d_model: int
    positions: ClassVar[str] = "days"


class Encoder(Block):
    """forward(ts [N, T, C], positions [N, T], mask [N, T]) -> per-date features [N, T, D] or
    features pooled over dates [N, D]. Encoders with `attention = True` also give attention
    maps [N, L, Q, T] (`get_attention_maps`, and `forward_with_attention`: the output and the
    maps from one pass), which feed the attention figures."""

    contract = {"out_dim": "the width D of its output"}
    out_dim: int
    attention: ClassVar[bool] = False

    def forward_with_attention(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The output and the attention maps [N, L, Q, T] from one pass."""
        raise NotImplementedError(f"{type(self).__name__} gives no attention maps")

    @torch.no_grad()
    def get_attention_maps(
        self, ts: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention maps [N, L, Q, T] (no gradient). Rows of valid queries sum to 1 over
        valid dates; padded dates and the rows of padded queries are exactly 0."""
        return self.forward_with_attention(ts, positions, mask)[1]


class Head(Block):
    """A decoder on encoded series: forward(x [N, T, D] or [N, D], mask [N, T]) -> logits
    [N, K] (classification), projections [N, P] or values [N, T, C] (reconstruction)."""

    contract = {"in_dim": "the width D of the features it takes"}
    in_dim: int


class PoolingHead(Head):
    """A head that first pools the features over valid dates: `pool(x [N, T, D] or [N, D],
    mask [N, T]) -> [N, D]`, then maps the pooled features (contrastive projections, the
    features of the projector and of few-shot prototypes)."""

    def pool(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] -> pooled features [N, D]."""
        raise NotImplementedError(f"{type(self).__name__} must define pool()")


class ClassificationHead(PoolingHead):
    """forward = classify(pool(x, mask)) -> logits [N, K]; `classify(pooled [N, D]) -> [N, K]`
    is where feature-space mixup mixes."""

    contract = {**Head.contract, "num_classes": "the number K of classes it scores"}
    num_classes: int

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features [N, D] -> logits [N, K]."""
        raise NotImplementedError(f"{type(self).__name__} must define classify()")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, T, D] or [N, D], mask [N, T] (True = valid) -> logits [N, K]."""
        return self.classify(self.pool(x, mask))


class ReconstructionHead(Head):
    """forward(x [N, T, D], mask [N, T]) -> values [N, T, C] at every date, zeros at padding."""

    contract = {**Head.contract, "out_bands": "the number C of bands it reconstructs"}
    out_bands: int


class Loss(nn.Module):
    """A training objective; what `forward` takes is the task's (see its `criterion`)."""
