"""What a Contrastive run reports besides its losses: the views of a few validation series on
a calendar axis, and projector embeddings of the encoder's pooled features."""

from __future__ import annotations

import numpy as np
import torch

from cmap.reports.attention import scheduled
from cmap.reports.reconstruction import ndvi_index, ndvi_of
from cmap.reports.tensorboard import log_embeddings

HEADER = ["label", "season", "index"]


class ContrastiveReports:
    """`views_sample` validation series with their views (NDVI, else the first band) and up to
    `max_embeddings` pooled features, at epochs 1, 1 + n, ... of a fit (0: never)."""

    def __init__(
        self,
        bands: list[str],
        groups: list[str],
        views_every: int,
        views_sample: int,
        embeddings_every: int,
        max_embeddings: int,
        log_figures: bool,
    ):
        self.bands, self.groups = bands, groups
        self.views_every = views_every if log_figures else 0
        self.views_sample, self.embeddings_every = views_sample, embeddings_every
        self.max_embeddings = max_embeddings
        self.index = ndvi_index(bands, "B04", "B08")
        self.value = "NDVI" if self.index else bands[0]
        self._series: list[dict] = []
        self._embeddings: list[torch.Tensor] = []
        self._metadata: list[list[str]] = []

    def _values(self, ts: torch.Tensor) -> np.ndarray:
        """ts [N, T, C] -> NDVI or the first band [N, T]."""
        return (ndvi_of(ts.float(), self.index) if self.index else ts[..., 0].float()).cpu().numpy()

    def wants_embeddings(self, module) -> bool:
        """Whether this validation batch's pooled features are collected (the task computes
        them only then)."""
        trainer = module.trainer
        room = self.max_embeddings - sum(len(e) for e in self._embeddings)
        return (
            not trainer.sanity_checking
            and trainer.state.fn == "fit"
            and trainer.is_global_zero
            and scheduled(module.current_epoch, self.embeddings_every)
            and room > 0
        )

    def collect(self, module, batch: dict, views: list[dict], pooled: torch.Tensor | None) -> None:
        """A validation batch, its views and its pooled features [N, D] (None: not wanted)."""
        trainer = module.trainer
        if trainer.sanity_checking or trainer.state.fn != "fit" or not trainer.is_global_zero:
            return
        epoch = module.current_epoch
        room = self.max_embeddings - sum(len(e) for e in self._embeddings)
        if pooled is not None and room > 0:
            self._embeddings.append(pooled[:room].detach().float().cpu())
            for target, season, index in zip(
                batch["class"][:room].tolist(),
                batch["season"][:room].tolist(),
                batch["index"][:room].tolist(),
            ):
                self._metadata.append([self.groups[target], str(season), str(index)])
        room = self.views_sample - len(self._series)
        if not scheduled(epoch, self.views_every) or room <= 0:
            return
        calendar = getattr(trainer.datamodule, "season", None)
        for i, season in enumerate(batch["season"][:room].tolist()):
            first = np.datetime64(calendar.first_date(season) if calendar else 0, "D")
            item = {"name": f"series {int(batch['index'][i])}, season {season}", "views": []}
            for view in [batch, *views]:
                valid = view["mask"][i].cpu().numpy()
                days = view["days"][i].cpu().numpy()[valid]
                values = self._values(view["ts"][i : i + 1])[0][valid]
                item["views"].append((first + days.astype("timedelta64[D]"), values))
            self._series.append(item)

    def epoch_end(self, module, stage: str) -> None:
        series, self._series = self._series, []
        embeddings, metadata = self._embeddings, self._metadata
        self._embeddings, self._metadata = [], []
        trainer = module.trainer
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        epoch = module.current_epoch
        figures = module.figures() if series else None
        if figures is not None:
            title = f"{stage} views, epoch {epoch}"
            figures.draw("views_figure", f"{stage}/views", epoch, series, self.value, title)
        if embeddings:
            features = torch.cat(embeddings)
            log_embeddings(module.logger, f"{stage}_embeddings", features, metadata, HEADER, epoch)
