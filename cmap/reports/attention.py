"""Attention maps summarised per class on calendar months (or equal bins) of the season."""

from __future__ import annotations

import datetime as dt

import numpy as np
import torch

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def scheduled(epoch: int, every: int) -> bool:
    """Epochs 1, 1 + every, 1 + 2 every, ... (0-based, as in the seed); never if every <= 0."""
    return every > 0 and epoch >= 1 and (epoch - 1) % every == 0


def month_bins(season_start: str, season_length: int) -> tuple[np.ndarray, list[str]]:
    """Bin index of every day of the season (calendar month) and the bins' labels.

    Months are counted from the season start: a season starting 11-01 has bins Nov, Dec,
    Jan, ..., and a second November is labelled `Nov+1`.
    """
    month, day = (int(part) for part in season_start.split("-"))
    start = dt.date(2001, month, day)  # any non-leap year: only months matter
    months = [(start + dt.timedelta(days=d)) for d in range(season_length)]
    keys = [(m.year - 2001) * 12 + m.month - 1 for m in months]
    first = keys[0]
    index = np.asarray([k - first for k in keys], dtype=np.int64)
    labels = []
    for k in range(first, keys[-1] + 1):
        name = MONTHS[k % 12]
        labels.append(name if k - first < 12 else f"{name}+1")
    return index, labels


def equal_bins(season_length: int, n_bins: int = 12) -> tuple[np.ndarray, list[str]]:
    """Bin index of every day for `n_bins` equal parts of the season, labelled by first day."""
    index = np.minimum(np.arange(season_length) * n_bins // season_length, n_bins - 1)
    labels = [f"d{int(np.flatnonzero(index == b)[0])}" for b in range(n_bins)]
    return index, labels


def received_attention(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """maps [N, L, Q, T] (query, key), mask [N, T] -> [N, L, T]: the attention each date
    receives, averaged over the valid queries (Q = 1: the single query's attention)."""
    if maps.shape[2] == 1:
        return maps[:, :, 0, :]
    queries = mask[:, None, :, None].to(maps.dtype)  # [N, 1, Q, 1]
    return (maps * queries).sum(dim=2) / queries.sum(dim=2).clamp(min=1)


def binned(
    received: torch.Tensor, days: torch.Tensor, mask: torch.Tensor, bins: torch.Tensor, n_bins: int
) -> torch.Tensor:
    """received [N, L, T], days [N, T] (days since season start), mask [N, T],
    bins [season days] (bin of each day) -> [N, L, G] attention per bin of the G bins (sums to
    1 per row)."""
    index = bins[days.clamp(0, len(bins) - 1)]  # [N, T]
    index = index[:, None, :].expand_as(received)
    out = received.new_zeros(*received.shape[:2], n_bins)
    return out.scatter_add_(2, index, received * mask[:, None, :].to(received.dtype))


class AttentionByClass:
    """Sums of binned attention per true class over one epoch, capped at `max_samples`.

    State: sums [K, L, G] (attention received per bin), shares [K, G] (what uniform attention
    over each sample's valid dates would give each bin: its share of the dates) and counts
    [K], as tensors, so processes can add theirs together.
    """

    def __init__(self, num_classes: int, bins: np.ndarray, labels: list[str], max_samples: int):
        self.bins = torch.as_tensor(bins)
        self.labels = labels
        self.num_classes = num_classes
        self.max_samples = max_samples
        self.sums: torch.Tensor | None = None
        self.shares = torch.zeros(num_classes, len(labels))
        self.counts = torch.zeros(num_classes)

    @property
    def full(self) -> bool:
        return int(self.counts.sum()) >= self.max_samples

    def update(self, maps, days, mask, target) -> None:
        """maps [N, L, Q, T], days [N, T], mask [N, T], target [N] (class index)."""
        room = self.max_samples - int(self.counts.sum())
        if room <= 0:
            return
        maps, days, mask, target = maps[:room], days[:room], mask[:room], target[:room]
        bins, n_bins = self.bins.to(days.device), len(self.labels)
        per_bin = binned(received_attention(maps.float(), mask), days, mask, bins, n_bins).cpu()
        uniform = mask.float() / mask.sum(dim=1, keepdim=True).clamp(min=1)  # [N, T]
        share = binned(uniform[:, None, :], days, mask, bins, n_bins)[:, 0].cpu()  # [N, G]
        if self.sums is None:
            self.sums = torch.zeros(self.num_classes, *per_bin.shape[1:])
        target = target.cpu()
        self.sums.index_add_(0, target, per_bin)
        self.shares.index_add_(0, target, share)
        self.counts += torch.bincount(target, minlength=self.num_classes).float()

    def summary(self) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray] | None:
        """For the classes seen: their indices, attention relative to uniform [K', L, G]
        (mean attention a bin receives / mean share of the class's valid dates in it; NaN
        where the class has no date), shares [K', G] and sample counts [K']. None if empty."""
        if self.sums is None or not self.counts.any():
            return None
        seen = [k for k in range(self.num_classes) if self.counts[k] > 0]
        attention = (self.sums[seen] / self.counts[seen, None, None]).numpy()
        shares = (self.shares[seen] / self.counts[seen, None]).numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(shares[:, None, :] > 0, attention / shares[:, None, :], np.nan)
        return seen, ratio, shares, self.counts[seen].numpy()


class AttentionReport:
    """Attention per class of validation samples at scheduled epochs, for either task:
    collection (capped), the sum over processes, and one figure per class."""

    def __init__(self, classes: list[str], every: int, max_samples: int):
        self.classes = classes
        self.every = every
        self.max_samples = max_samples
        self._attention: AttentionByClass | None = None

    def wanted(self, module) -> bool:
        """Whether this validation batch's attention is collected: a scheduled epoch of a
        fit, an encoder with attention maps, and room left under the cap."""
        trainer = module.trainer
        return (
            not trainer.sanity_checking
            and trainer.state.fn == "fit"
            and scheduled(module.current_epoch, self.every)
            and module.encoder.attention
            and not (self._attention is not None and self._attention.full)
        )

    def collect(
        self, module, batch: dict, target: torch.Tensor, maps: torch.Tensor | None = None
    ) -> None:
        """During validation: attention maps [N, L, Q, T] of the batch (computed here unless
        the task's forward pass gave them), grouped by `target` [N] (index into `classes`)."""
        if not self.wanted(module):
            return
        if self._attention is None:
            bins, labels = season_bins(module.trainer.datamodule)
            self._attention = AttentionByClass(len(self.classes), bins, labels, self.max_samples)
        mask = batch["mask"]
        if maps is None:
            maps = module.encoder.get_attention_maps(batch["ts"], batch["positions"], mask)
        self._attention.update(maps.detach(), batch["days"], mask, target)

    def take(self, module) -> AttentionByClass | None:
        """At epoch end, on every process: this epoch's attention summed over processes
        (then cleared)."""
        attention, self._attention = self._attention, None
        trainer = module.trainer
        if attention is not None and attention.sums is not None and trainer.world_size > 1:
            reduce = trainer.strategy.reduce
            attention.sums = reduce(attention.sums.to(module.device), reduce_op="sum").cpu()
            attention.counts = reduce(attention.counts.to(module.device), reduce_op="sum").cpu()
            attention.shares = reduce(attention.shares.to(module.device), reduce_op="sum").cpu()
        return attention

    def log(
        self, attention: AttentionByClass | None, figures, tag: str, epoch: int, title: str
    ) -> None:
        """On rank 0: the figure of every class seen, drawn by `figures` (a `FigureWorker`)."""
        summary = attention.summary() if attention is not None else None
        if summary is None or figures is None:
            return
        seen, ratio, shares, counts = summary
        names = [self.classes[k] for k in seen]
        figures.draw(
            "attention_figure", tag, epoch, ratio, shares, counts, names, attention.labels, title
        )


def season_bins(datamodule) -> tuple[np.ndarray, list[str]]:
    """Calendar months of the data's season, else 12 equal bins."""
    season = getattr(datamodule, "season", None)
    if season is not None:
        return month_bins(season.start, season.length)
    return equal_bins(400)
