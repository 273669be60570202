"""Which valid dates a masked auto-encoder hides from its encoder."""

from __future__ import annotations

from typing import Literal

import torch

from cmap.errors import ConfigError

MaskMode = Literal["random", "contiguous"]


def hidden_counts(mask: torch.Tensor, ratio: float) -> torch.Tensor:
    """mask [N, T] -> dates to hide per series [N]: round(ratio x valid dates), at least one
    and always leaving one visible (a series with a single valid date hides none)."""
    valid = mask.sum(dim=1)
    counts = torch.round(valid.double() * ratio).long()
    return torch.minimum(counts.clamp(min=1), (valid - 1).clamp(min=0))


def hide_dates(
    mask: torch.Tensor,
    ratio: float,
    mode: MaskMode = "random",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """mask [N, T] (True = valid) -> hidden [N, T], a subset of the valid dates.

    "random" hides uniformly drawn valid dates; "contiguous" hides one run of consecutive
    valid dates (in date order) at a random place, as a cloudy spell would.
    """
    if not 0 < ratio < 1:
        raise ConfigError(f"mask_ratio must be in (0, 1), got {ratio}")
    counts = hidden_counts(mask, ratio)[:, None]  # [N, 1]
    draws = torch.rand(mask.shape, generator=generator, device=mask.device)  # [N, T]
    if mode == "random":
        # Rank of each valid date in a random order; padded dates rank last.
        order = draws.masked_fill(~mask, 2.0).argsort(dim=1)
        ranks = order.argsort(dim=1)
        return (ranks < counts) & mask
    if mode == "contiguous":
        rank = mask.long().cumsum(dim=1) - 1  # index of each date among the valid ones
        room = mask.sum(dim=1, keepdim=True) - counts + 1  # possible starts
        start = (draws[:, :1] * room).long()
        return mask & (rank >= start) & (rank < start + counts)
    raise ConfigError(f"mask_mode must be 'random' or 'contiguous', got {mode!r}")
