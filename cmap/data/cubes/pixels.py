"""Pixel series of a raster window: the valid dates of each pixel, as model inputs."""

from __future__ import annotations

import numpy as np
import torch


def pixel_series(values: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """A window's values [T, C, h, w] and valid [T, h, w] -> the series of its pixels that
    have at least one valid date, valid dates first: ts [P, T', C], mask [P, T'],
    date index [P, T'] (into the cube's dates), pixel [P] (flat index in the window);
    T' = the most valid dates of any pixel."""
    t, c, h, w = values.shape
    valid = valid.reshape(t, h * w).T  # [h*w, T]
    pixels = np.flatnonzero(valid.any(axis=1))
    valid = valid[pixels]
    counts = valid.sum(axis=1)
    width = int(counts.max(initial=0))
    order = np.argsort(~valid, axis=1, kind="stable")[:, :width]  # valid dates first, in order
    mask = np.arange(width)[None, :] < counts[:, None]
    by_pixel = values.reshape(t, c, h * w).transpose(2, 0, 1)  # [h*w, T, C], a view
    ts = by_pixel[pixels[:, None], order]  # [P, T', C], one gather
    ts[~mask] = 0.0
    return {"ts": ts, "mask": mask, "date": order, "pixel": pixels}


def model_inputs(
    ts: np.ndarray,
    mask: np.ndarray,
    date: np.ndarray,
    days: np.ndarray,
    positions: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Pixel series (ts [N, T, C], mask [N, T], date [N, T] into the cube's dates; valid
    dates first) and the cube dates' days since the season start [D] -> ts, positions, days
    and mask tensors, cut to the batch's longest series [N, T'] (no wider padding);
    `positions` [N, T] (thermal time) replaces the days as positions when given."""
    width = int(mask.sum(axis=1).max(initial=0))
    ts, mask, date = ts[:, :width], mask[:, :width], date[:, :width]
    positions = None if positions is None else positions[:, :width]
    at = np.where(mask, days[date], 0)
    return {
        "ts": torch.from_numpy(np.ascontiguousarray(ts)),
        "positions": torch.from_numpy(at if positions is None else positions),
        "days": torch.from_numpy(at.copy()),
        "mask": torch.from_numpy(np.ascontiguousarray(mask)),
    }
