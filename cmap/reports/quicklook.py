"""Quicklooks: a class map rendered as PNG with its own colours and a legend."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from cmap.io.maps import read_overview, read_probability_overview
from cmap.reports.figures import confidence_figure, map_figure


def write_quicklook(path: Path, output: Path | None = None, max_side: int = 2048) -> Path:
    """Render a class map (its colours, a legend) or a probabilities file (the highest class
    probability of each pixel) as PNG (default: beside it, `.png`); returns the PNG."""
    output = output or path.with_suffix(".png")
    probabilities = read_probability_overview(path, max_side)
    if probabilities is not None:
        highest, names = probabilities
        figure = confidence_figure(highest, f"{path.name}: highest of {len(names)} classes")
    else:
        classes, colours, names = read_overview(path, max_side)
        figure = map_figure(classes, names, colours, path.name)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
