"""The map-product commands (`cmap uncertainty`, `cmap smooth`, ...), as typed functions whose
signatures jsonargparse reads for `cmap <command> --help`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cmap.products.smoothing import smooth_probabilities
from cmap.products.uncertainty import write_uncertainty


def uncertainty(probabilities: Path, output: Path | None = None, overwrite: bool = False) -> None:
    """Per-pixel uncertainty of a crop map from its class probabilities.

    Writes one float32 GeoTIFF aligned with the map, bands: entropy (normalised: 0 certain,
    1 uniform), margin (first minus second class probability: low is unsure) and least
    confidence (1 minus the first class probability); NaN where the map has no value.

    Args:
        probabilities: the map's probabilities GeoTIFF (`<map>_probabilities.tif`, written
            by `cmap predict` with `probabilities: true`).
        output: the uncertainty GeoTIFF (default: `<map>_uncertainty.tif` beside it).
        overwrite: replace an existing output.
    """
    print(f"wrote {write_uncertainty(Path(probabilities), output, overwrite)}")


def smooth(
    probabilities: Path,
    output: Path | None = None,
    method: Literal["bayes", "gaussian", "majority"] = "bayes",
    window: int = 9,
    smoothness: float | list[float] = 20.0,
    neigh_fraction: float = 0.5,
    sigma: float = 1.0,
    overwrite: bool = False,
) -> None:
    """Smooth a crop map's class probabilities spatially and label the result.

    Removes the isolated wrong pixels of a pixel-wise map. Pixels without a value are left
    out of every neighbourhood; the result does not depend on how the map is cut into
    blocks. Writes a class map and its probabilities, in the layout of `cmap predict`.

    Args:
        probabilities: the map's probabilities GeoTIFF (`<map>_probabilities.tif`).
        output: the smoothed class map (default: `<map>_smoothed.tif`); its probabilities go
            to `<output stem>_probabilities.tif`.
        method: `bayes` (sits' Bayesian smoothing of the class logits), `gaussian` (the
            Gaussian-weighted mean of the neighbours' probabilities) or `majority` (each
            class's share of the neighbours' labels).
        window: side of the neighbourhood in pixels, odd (bayes, majority).
        smoothness: bayes: the variance of a pixel's class logits, one value or one per
            class; larger values follow the neighbours more (sits' default: 20).
        neigh_fraction: bayes: the share of valid neighbours, likeliest first, whose logits
            make the neighbourhood's mean and variance.
        sigma: gaussian: the kernel's standard deviation in pixels (it reaches 3 sigma).
        overwrite: replace existing outputs.
    """
    source = Path(probabilities)
    stem = source.stem.removesuffix("_probabilities")
    output = Path(output) if output else source.with_name(f"{stem}_smoothed.tif")
    written = smooth_probabilities(
        source, output, method, window, smoothness, neigh_fraction, sigma, overwrite
    )
    for path in written:
        print(f"wrote {path}")


PRODUCTS = {"uncertainty": uncertainty, "smooth": smooth}
