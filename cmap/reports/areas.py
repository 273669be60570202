"""The figure of an accuracy assessment: each class's mapped area beside its estimated area
with the 95 % confidence interval."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from cmap.reports.figures import plt


def area_figure(
    classes: list[str],
    mapped: np.ndarray,
    estimated: np.ndarray,
    half_width: np.ndarray,
    unit: str,
    title: str,
) -> Figure:
    """Bars per class [K]: mapped area, and estimated area with error bars of +- half_width
    (NaN: no interval, no bar)."""
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * len(classes), 4.2))
    ax.bar(x - 0.2, mapped, 0.4, label="mapped (pixel count)", color="#9aa5b1")
    errors = np.nan_to_num(half_width, nan=0.0)
    ax.bar(
        x + 0.2, estimated, 0.4, yerr=errors, capsize=3, label="estimated, 95 % CI", color="#2f6f9f"
    )
    ax.set_xticks(x, classes, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"area ({unit})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
