"""What an AutoEncoder run reports besides its losses: NDVI reconstructions and attention."""

from __future__ import annotations

import logging

import numpy as np
import torch

from cmap.reports.attention import AttentionReport, scheduled

log = logging.getLogger(__name__)


def ndvi(red: torch.Tensor, nir: torch.Tensor) -> torch.Tensor:
    """(NIR - red) / (NIR + red), 0 where both are 0."""
    total = nir + red
    return torch.where(total != 0, (nir - red) / total.where(total != 0, 1.0), 0.0)


def ndvi_index(bands: list[str], red: str, nir: str) -> tuple[int, ...] | None:
    """Where NDVI comes from: (the NDVI band,), (red, NIR) or None (neither)."""
    if "NDVI" in bands:
        return (bands.index("NDVI"),)
    if red in bands and nir in bands:
        return (bands.index(red), bands.index(nir))
    return None


def ndvi_of(ts: torch.Tensor, index: tuple[int, ...]) -> torch.Tensor:
    """ts [N, T, C] -> NDVI [N, T] (read, or computed from red and NIR)."""
    if len(index) == 1:
        return ts[..., index[0]]
    return ndvi(ts[..., index[0]], ts[..., index[1]])


class ReconstructionReports:
    """NDVI figures of the first `samples` validation series (observed, reconstructed, hidden
    dates) and attention per class, at epochs 1, 1 + n, ... of a fit.

    NDVI is read from an `NDVI` band when the data has one, else computed from `red` and
    `nir`; without either, no NDVI figure is made (said once in the log).
    """

    def __init__(
        self,
        bands: list[str],
        groups: list[str],
        ndvi_every: int,
        samples: int,
        red: str,
        nir: str,
        attention_every: int,
        max_attention: int,
        log_figures: bool,
    ):
        self.ndvi_every = ndvi_every if log_figures else 0
        self.samples = samples
        every = attention_every if log_figures else 0
        self.attention = AttentionReport(groups, every, max_attention)
        self.index = ndvi_index(bands, red, nir)
        if self.index is None and self.ndvi_every and samples:
            log.info("no NDVI band nor %s/%s among %s: no NDVI figures", red, nir, bands)
        self._series: list[dict] = []

    def _ndvi(self, ts: torch.Tensor) -> torch.Tensor:
        """ts [N, T, C] -> [N, T]."""
        return ndvi_of(ts, self.index)

    def collect(self, module, batch: dict, reconstructed, hidden, groups) -> None:
        trainer = module.trainer
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.attention.collect(module, batch, groups)
        room = self.samples - len(self._series)
        if (
            self.index is None
            or room <= 0
            or not trainer.is_global_zero
            or not scheduled(module.current_epoch, self.ndvi_every)
        ):
            return
        observed = self._ndvi(batch["ts"][:room].float()).cpu().numpy()
        rebuilt = self._ndvi(reconstructed[:room].float()).cpu().numpy()
        mask, hidden = batch["mask"][:room].cpu().numpy(), hidden[:room].cpu().numpy()
        days, seasons = batch["days"][:room].cpu().numpy(), batch["season"][:room].tolist()
        calendar = getattr(trainer.datamodule, "season", None)
        for i, season in enumerate(seasons):
            valid = mask[i]
            # calendar dates when the season is known, else days from 1970-01-01
            first = np.datetime64(calendar.first_date(season) if calendar else 0, "D")
            self._series.append(
                {
                    "dates": first + days[i, valid].astype("timedelta64[D]"),
                    "observed": observed[i, valid],
                    "reconstructed": rebuilt[i, valid],
                    "hidden": hidden[i, valid],
                    "name": f"sample {int(batch['index'][i])}, season {season}",
                }
            )

    def epoch_end(self, module, stage: str) -> None:
        trainer = module.trainer
        series, self._series = self._series, []
        attention = self.attention.take(module)
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        figures = module.figures() if (series or attention is not None) else None
        epoch = module.current_epoch
        if series and figures is not None:
            title = f"{stage} NDVI reconstruction, epoch {epoch}"
            figures.draw("ndvi_figure", f"{stage}/ndvi_reconstruction", epoch, series, title)
        title = f"{stage}, epoch {epoch}"
        self.attention.log(attention, figures, f"{stage}/attention", epoch, title)
