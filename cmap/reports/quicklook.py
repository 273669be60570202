"""Quicklooks: a class map rendered as PNG with its own colours, a legend, coordinates, a scale
bar, and what it is (season, model, CRS)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from cmap.io.maps import read_overview
from cmap.io.palette import read_colours
from cmap.reports.figures import confidence_figure, map_figure


def write_quicklook(
    path: Path, output: Path | None = None, colours: Path | None = None, max_side: int = 2048
) -> Path:
    """Render a class map (its colours, or those of a `colours` YAML file, and a legend), a
    probabilities file (the highest class probability of each pixel) or an uncertainty file
    (the normalised entropy) as PNG (default: beside it, `.png`); returns the PNG."""
    output = output or path.with_suffix(".png")
    view = read_overview(path, max_side)
    tags = view.tags
    about = (
        [f"season {tags['SEASON']} ({tags.get('SEASON_DATES', '')})"] if "SEASON" in tags else []
    )
    about += [f"model {tags['MODEL']}"] if "MODEL" in tags else []
    crs = view.crs.to_string() if view.crs else "no CRS"
    place = {
        "bounds": view.bounds,
        "crs": crs,
        "metres": bool(view.crs and view.crs.is_projected and view.crs.linear_units == "metre"),
    }
    title = "\n".join([path.name, " · ".join(about)] if about else [path.name])
    if view.kind == "uncertainty":
        label = "normalised entropy (0: certain, 1: all classes alike)"
        figure = confidence_figure(view.values, f"{title}\nuncertainty", place, label, "magma")
    elif view.kind == "probabilities":
        title = f"{title}\nhighest of {len(view.names)} class probabilities"
        figure = confidence_figure(view.values, title, place)
    else:
        table = dict(view.colours)
        if colours is not None:
            for name, rgb in read_colours(colours, view.names).items():
                table[view.names.index(name)] = (*rgb, 255)
        figure = map_figure(view.values, view.names, table, title, place)
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
