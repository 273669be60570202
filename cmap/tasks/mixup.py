"""Mixup for irregular series (Zhang et al. 2018) and manifold mixup on pooled features
(Verma et al. 2019): each training batch is mixed with a shuffled copy of itself."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cmap.errors import ConfigError
from cmap.models.base import ClassificationHead


def resample(
    ts: torch.Tensor, days: torch.Tensor, mask: torch.Tensor, at: torch.Tensor
) -> torch.Tensor:
    """Each series' valid dates (ts [N, T, C] at days [N, T], mask [N, T] True = valid)
    linearly interpolated at the days `at` [N, S] -> [N, S, C]; days before the first or
    after the last valid date take that date's values. Every series needs a valid date."""
    t = ts.shape[1]
    key = torch.where(mask, days.double(), torch.inf)
    order = key.argsort(dim=1)  # valid dates first, by day
    key = key.gather(1, order)
    ts = ts.gather(1, order[..., None].expand_as(ts))
    last = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)  # [N, 1]
    hi = torch.searchsorted(key, at.double().contiguous()).clamp(max=t - 1)
    hi = torch.minimum(hi, last)
    lo = (hi - 1).clamp(min=0)
    d_lo, d_hi = key.gather(1, lo), key.gather(1, hi)
    gap = (d_hi - d_lo).clamp(min=1e-9)
    w = ((at.double() - d_lo) / gap).clamp(0, 1).to(ts.dtype)[..., None]  # [N, S, 1]
    c = ts.shape[-1]
    v_lo = ts.gather(1, lo[..., None].expand(-1, -1, c))
    v_hi = ts.gather(1, hi[..., None].expand(-1, -1, c))
    return v_lo + w * (v_hi - v_lo)


class Mixup:
    """Mixes each training batch with a random permutation of itself, with one weight
    lambda ~ Beta(alpha, alpha) per batch; the loss is lambda L(logits, y) + (1 - lambda)
    L(logits, y[perm]) for any criterion.

    Args:
        alpha: Beta parameter; small values (0.2) keep most batches close to one series.
        space: "input": series b is interpolated in time at series a's days, and the bands
            are mixed on a's dates (a's positions, mask and padding are kept), so series with
            different dates mix correctly. "features" (manifold mixup): the series' features
            pooled over valid dates are mixed before the head's linear layer (needs a head
            with `pool` and `classify`, as cmap's classification heads have).
        p: probability that a batch is mixed at all.

    Draws come from torch's global generator (seeded by `seed_everything`, resumed with
    `RandomStateCheckpoint`).
    """

    def __init__(
        self, alpha: float = 0.2, space: Literal["input", "features"] = "features", p: float = 1.0
    ):
        if alpha <= 0:
            raise ConfigError(f"Mixup needs alpha > 0, got {alpha}")
        if not 0 < p <= 1:
            raise ConfigError(f"Mixup needs 0 < p <= 1, got {p}")
        if space not in ("input", "features"):
            raise ConfigError(f'Mixup space must be "input" or "features", got {space!r}')
        self.alpha, self.space, self.p = alpha, space, p

    def draw(self, n: int, device: torch.device) -> tuple[float, torch.Tensor] | None:
        """None (this batch is not mixed) or (lambda, permutation [n])."""
        if n < 2 or (self.p < 1 and torch.rand(()) >= self.p):
            return None
        lam = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        return lam, torch.randperm(n).to(device)

    def inputs(self, batch: dict, mixed: tuple[float, torch.Tensor] | None) -> dict:
        """In input space, a copy of `batch` whose ts [N, T, C] = lam a + (1 - lam) b on a's
        dates, with b = the series perm[i] resampled at a's days (padded dates stay zero);
        otherwise `batch` itself."""
        if mixed is None or self.space != "input":
            return batch
        lam, perm = mixed
        ts, days, mask = batch["ts"], batch["days"], batch["mask"]
        other = resample(ts[perm], days[perm], mask[perm], days)
        return batch | {"ts": (lam * ts + (1 - lam) * other).masked_fill(~mask[..., None], 0)}

    def head(self, head: nn.Module, features, mask, mixed: tuple[float, torch.Tensor]):
        """The head's logits [N, K] on features [N, T, D] or [N, D]; in feature space, the
        pooled features [N, D] are mixed first."""
        if self.space != "features":
            return head(features, mask)
        lam, perm = mixed
        pooled = head.pool(features, mask)
        return head.classify(lam * pooled + (1 - lam) * pooled[perm])

    @staticmethod
    def loss(criterion, logits, target, mixed: tuple[float, torch.Tensor]):
        """(lam L(logits, y) + (1 - lam) L(logits, y[perm]), the target that weighs most)."""
        lam, perm = mixed
        loss = lam * criterion(logits, target) + (1 - lam) * criterion(logits, target[perm])
        return loss, target if lam >= 0.5 else target[perm]

    def check_head(self, head: nn.Module) -> None:
        if self.space == "features" and not isinstance(head, ClassificationHead):
            raise ConfigError(
                f"Mixup in feature space needs a head with pool() and classify(); "
                f"{type(head).__name__} has not: use space: input"
            )
