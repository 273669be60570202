"""Spatial smoothing of a map's class probabilities before labelling, block by block with a
halo as wide as the neighbourhood, so the result does not depend on the blocks.

- `bayes`: the Bayesian smoothing of sits (Camara et al., sits book, "Bayesian smoothing").
  Each class's logit x at a pixel is taken as a noisy measure (variance `smoothness`) of a
  true logit whose prior is the neighbourhood's: mean m and variance s2 of the logits of the
  `neigh_fraction` of valid neighbours most likely to be that class. The posterior mean
  (s2 x + smoothness m) / (s2 + smoothness) replaces x: the larger `smoothness`, the more a
  pixel follows its neighbours.
- `gaussian`: the Gaussian-weighted mean of the valid neighbours' probabilities.
- `majority`: each class's share of the valid neighbours' labels (a majority filter; ties go
  to the pixel's own likeliest class).

Pixels without a value neither receive nor give one: neighbourhoods count valid pixels only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter, uniform_filter

from cmap.errors import ConfigError
from cmap.io.outputs import refuse_existing
from cmap.products.probabilities import (
    blocks,
    classes_of,
    map_output,
    open_probabilities,
    read_block,
    with_halo,
)

Method = Literal["bayes", "gaussian", "majority"]
EPSILON = 1e-4  # probabilities are kept in [EPSILON, 1 - EPSILON] for finite logits
TRUNCATE = 3.0  # the Gaussian kernel reaches this many sigmas


def bayes(
    p: np.ndarray, missing: np.ndarray, window: int, smoothness: np.ndarray, fraction: float
) -> np.ndarray:
    """Probabilities [K, H, W], missing [H, W] -> smoothed [K, H, W] (see the module)."""
    r = window // 2
    logits = np.log(np.clip(p, EPSILON, 1 - EPSILON) / np.clip(1 - p, EPSILON, 1 - EPSILON))
    out = np.empty_like(p)
    for k, x in enumerate(logits):
        padded = np.pad(np.where(missing, np.nan, x), r, constant_values=np.nan)
        near = sliding_window_view(padded, (window, window)).reshape(*x.shape, -1)  # [H, W, n]
        ranked = -np.sort(-near, axis=-1)  # descending, NaN (no value) last
        valid = (~np.isnan(near)).sum(axis=-1)
        kept = np.maximum(1, np.ceil(fraction * valid)).astype(np.int64)
        take = np.arange(near.shape[-1]) < kept[..., None]
        values = np.where(take, ranked, 0.0)
        mean = values.sum(axis=-1) / kept
        spread = np.where(take, (ranked - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        variance = spread / np.maximum(kept - 1, 1)
        out[k] = (variance * x + smoothness[k] * mean) / (variance + smoothness[k])
    smoothed = 1 / (1 + np.exp(-out))
    return smoothed / smoothed.sum(axis=0)


def gaussian(p: np.ndarray, missing: np.ndarray, sigma: float) -> np.ndarray:
    """Probabilities [K, H, W] -> their Gaussian-weighted mean over valid neighbours."""
    valid = (~missing).astype(np.float64)
    weight = gaussian_filter(valid, sigma, mode="constant", truncate=TRUNCATE)
    spread = [gaussian_filter(q * valid, sigma, mode="constant", truncate=TRUNCATE) for q in p]
    return np.stack(spread) / np.where(weight > 0, weight, 1.0)


def majority(p: np.ndarray, missing: np.ndarray, window: int) -> np.ndarray:
    """Probabilities [K, H, W] -> each class's share of the valid neighbours' labels."""
    labels = p.argmax(axis=0)
    valid = ~missing
    votes = [
        uniform_filter(((labels == k) & valid).astype(np.float64), window, mode="constant")
        for k in range(len(p))
    ]
    count = uniform_filter(valid.astype(np.float64), window, mode="constant")
    shares = np.round(np.stack(votes) * window**2) / np.maximum(np.round(count * window**2), 1)
    tie = 1e-9 * (labels[None] == np.arange(len(p))[:, None, None])  # the pixel's own wins ties
    return (shares + tie) / (shares + tie).sum(axis=0)


def halo(method: Method, window: int, sigma: float) -> int:
    """How far a pixel's result reaches: the neighbourhood's radius."""
    return int(np.ceil(TRUNCATE * sigma)) if method == "gaussian" else window // 2


def check(window: int, smoothness, neigh_fraction: float, sigma: float, classes: list[str]):
    """The settings refused in one line each; returns the per-class variances [K]."""
    if window < 3 or window % 2 == 0:
        raise ConfigError(f"window must be an odd number of pixels, at least 3, got {window}")
    if not 0 < neigh_fraction <= 1:
        raise ConfigError(f"neigh_fraction must lie in (0, 1], got {neigh_fraction}")
    if sigma <= 0:
        raise ConfigError(f"sigma must be positive, got {sigma}")
    values = np.atleast_1d(np.asarray(smoothness, np.float64))
    if len(values) not in (1, len(classes)) or (values <= 0).any():
        raise ConfigError(
            f"smoothness takes one positive variance, or one per class "
            f"({', '.join(classes)}), got {smoothness}"
        )
    return np.broadcast_to(values, (len(classes),))


def smooth_probabilities(
    probabilities: Path,
    output: Path,
    method: Method = "bayes",
    window: int = 9,
    smoothness: float | list[float] = 20.0,
    neigh_fraction: float = 0.5,
    sigma: float = 1.0,
    overwrite: bool = False,
    block: int = 256,
) -> tuple[Path, Path]:
    """Smooth a probabilities file; writes the class map `output` and its probabilities
    `<output stem>_probabilities.tif` (the input's dtype). Returns both paths."""
    output = Path(output)
    companion = output.with_name(f"{output.stem}_probabilities.tif")
    if Path(probabilities).resolve() in (output.resolve(), companion.resolve()):
        raise ConfigError(f"{probabilities}: the output would replace the input; name another")
    with open_probabilities(Path(probabilities)) as src:
        variances = check(window, smoothness, neigh_fraction, sigma, classes_of(src))
        refuse_existing(output, companion, overwrite=overwrite)
        settings = {
            "bayes": f"window {window}, smoothness {smoothness}, neigh_fraction {neigh_fraction}",
            "gaussian": f"sigma {sigma}",
            "majority": f"window {window}",
        }[method]
        tags = {"SMOOTHING": f"{method} ({settings})", "PROBABILITIES": str(probabilities)}
        reach = halo(method, window, sigma)
        with map_output(src, output, companion, tags) as write:
            for part in blocks(src.height, src.width, block):
                grown = with_halo(part, reach, src.height, src.width)
                p, missing = read_block(src, grown)
                if method == "bayes":
                    smoothed = bayes(p, missing, window, variances, neigh_fraction)
                elif method == "gaussian":
                    smoothed = gaussian(p, missing, sigma)
                else:
                    smoothed = majority(p, missing, window)
                top, left = part.row_off - grown.row_off, part.col_off - grown.col_off
                inner = np.s_[top : top + part.height, left : left + part.width]
                write(smoothed[(slice(None), *inner)], missing[inner], part)
    return output, companion
