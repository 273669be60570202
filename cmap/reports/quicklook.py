"""Quicklooks: a class map rendered as PNG with its own colours and a legend."""

from __future__ import annotations

from pathlib import Path

from cmap.io.maps import read_overview
from cmap.reports.figures import map_figure


def write_quicklook(path: Path, output: Path | None = None, max_side: int = 2048) -> Path:
    """Render the class map `path` as PNG (default: beside it, `.png`); returns the PNG."""
    output = output or path.with_suffix(".png")
    classes, colours, names = read_overview(path, max_side)
    figure = map_figure(classes, names, colours, path.name)
    figure.savefig(output, dpi=100)
    return output
