"""Matplotlib figures of a run (Agg backend, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def confusion_figure(counts: np.ndarray, classes: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix (true x predicted): the share and the count in every
    cell, the support of each class on its row label, overall accuracy and macro-F1 in the
    title. Rows of classes absent from the data stay at 0 rather than dividing by zero.
    """
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    title = f"{title}\n{summary(counts)}"
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    k = len(classes)
    size = 1.6 + 0.55 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{shares[i, j]:.2f}\n({int(counts[i, j])})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), [f"{c} ({int(n)})" for c, n in zip(classes, totals[:, 0])])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (samples)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    return fig


def summary(counts: np.ndarray) -> str:
    """`OA 0.812, macro-F1 0.790 (N samples)` of a confusion matrix [K, K] (true x predicted);
    the macro mean is over every class, one never seen nor predicted scoring 0 (as in
    `per_class_scores`)."""
    counts = np.asarray(counts, dtype=np.float64)
    hits, support, predicted = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    total = counts.sum()
    both = support + predicted
    f1 = np.divide(2 * hits, both, out=np.zeros_like(hits), where=both > 0)
    oa = hits.sum() / total if total else 0.0
    return f"OA {oa:.3f}, macro-F1 {f1.mean():.3f} ({int(total)} samples)"


def distribution_figure(counts: dict[str, int], title: str) -> Figure:
    """Bar chart of samples per class, with the count on each bar."""
    names, values = list(counts), list(counts.values())
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 3.5))
    bars = ax.bar(names, values, color="tab:green")
    ax.bar_label(bars, fontsize=8)
    ax.margins(y=0.15)  # room for the count above the tallest bar
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def attention_figure(
    ratio: np.ndarray,
    shares: np.ndarray,
    counts: np.ndarray,
    classes: list[str],
    bins: list[str],
    title: str,
) -> Figure:
    """Where each class's attention goes, against where its dates are.

    ratio [K, L, G]: mean attention a season bin receives / the share of the class's valid
    dates in it (1: as much as uniform attention over the dates; NaN: no date there).
    shares [K, G]: that share of dates. counts [K]: samples per class. Top panel: the shares;
    one panel per layer below, all on one colour scale (log2, centred on 1).
    """
    k, layers, g = ratio.shape
    rows = [f"{name} (n={int(n)})" for name, n in zip(classes, counts)]
    finite = np.abs(np.log2(ratio[np.isfinite(ratio) & (ratio > 0)]))
    limit = max(float(finite.max()) if finite.size else 1.0, 1.0)
    fig, axes = plt.subplots(
        layers + 1,
        1,
        figsize=(3.2 + 0.55 * g, 1.4 + (0.3 * k + 0.7) * (layers + 1)),
        sharex=True,
        squeeze=False,
    )
    panels = [(axes[0, 0], 100 * shares, "dates (% of the class's)", "Greys", 0, None)]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log2(ratio)
    for layer in range(layers):
        label = f"layer {layer + 1}: attention ÷ uniform"
        panels.append((axes[layer + 1, 0], logs[:, layer], label, "RdBu_r", -limit, limit))
    for ax, values, label, cmap, low, high in panels:
        high = high if high is not None else max(float(np.nanmax(values)), 1e-6)
        image = ax.imshow(values, cmap=cmap, vmin=low, vmax=high, aspect="auto")
        for i in range(k):
            for j in range(g):
                value = values[i, j]
                if np.isfinite(value):
                    dark = abs(value) > 0.6 * high
                    text = f"{value:.0f}" if cmap == "Greys" else f"{2**value:.1f}"
                    colour = "white" if dark else "black"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
        ax.set_yticks(range(k), rows, fontsize=7)
        ax.set_title(label, fontsize=8, loc="left")
        bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
        if cmap != "Greys":
            ticks = np.arange(-np.floor(limit), np.floor(limit) + 1)
            bar.set_ticks(ticks, labels=[f"{2**t:g}" for t in ticks])
    axes[-1, 0].set_xticks(range(g), bins, rotation=45, ha="right")
    fig.suptitle(f"{title}: attention by month relative to uniform (>1: more than its dates)")
    fig.tight_layout()
    return fig


def ndvi_figure(series: list[dict], title: str) -> Figure:
    """Observed and reconstructed NDVI of a few series, hidden dates marked.

    Each item: dates (datetime64[D] [T]), observed [T], reconstructed [T], hidden [T] bool
    (valid dates only), name.
    """
    cols = min(len(series), 4)
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, item in zip(axes.flat, series):
        dates, hidden = item["dates"], item["hidden"]
        ax.plot(dates, item["observed"], "-o", ms=3, color="tab:green", label="observed")
        ax.plot(dates, item["reconstructed"], "--", color="tab:purple", label="reconstructed")
        ax.plot(
            dates[hidden],
            item["observed"][hidden],
            "o",
            ms=6,
            mfc="none",
            color="tab:red",
            label="hidden",
        )
        ax.set_title(item["name"], fontsize=8)
        ax.set_ylim(-0.2, 1.0)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in axes.flat[len(series) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_ylabel("NDVI")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def views_figure(series: list[dict], value: str, title: str) -> Figure:
    """A few series and their views on a calendar axis: the series as a grey line, each view's
    dates as markers of their own colour. Each item: name, views [(dates, values)] with the
    series itself first."""
    cols = min(len(series), 4)
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    for ax, item in zip(axes.flat, series):
        (dates, values), *views = item["views"]
        ax.plot(dates, values, "-", color="0.6", label="series")
        for number, (view_dates, view_values) in enumerate(views):
            ax.plot(
                view_dates,
                view_values,
                "o",
                ms=3 + 2 * number,
                mfc="none",
                label=f"view {number + 1}",
            )
        ax.set_title(item["name"], fontsize=8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in axes.flat[len(series) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_ylabel(value)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def map_figure(
    classes: np.ndarray,
    names: list[str],
    colours: dict[int, tuple],
    title: str,
    place: dict | None = None,
) -> Figure:
    """A class map [H, W] (uint8 ids, 255 = no data) in its colour table, with a legend of
    the classes present; `place` (see `georeference`) adds coordinates and a scale bar."""
    from matplotlib.patches import Patch

    rgba = np.zeros((*classes.shape, 4))
    for k, colour in colours.items():
        rgba[classes == k] = np.asarray(colour) / 255
    height, width = classes.shape
    scale = 6 / max(height, width)
    fig, ax = plt.subplots(figsize=(width * scale + 3.2, height * scale + 1.4))
    ax.imshow(rgba, interpolation="nearest", extent=_extent(place))
    georeference(ax, place)
    ax.set_title(title, fontsize=8)
    present = [k for k in np.unique(classes) if k < len(names)]
    handles = [Patch(color=np.asarray(colours[k]) / 255, label=names[k]) for k in present]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def confidence_figure(
    highest: np.ndarray,
    title: str,
    place: dict | None = None,
    label: str = "probability of the predicted class",
    colours: str = "viridis",
) -> Figure:
    """A value in [0, 1] per pixel [H, W] (by default the highest class probability; NaN: no
    data, left blank), with a colour bar `label`led; `place` as for `map_figure`."""
    height, width = highest.shape
    scale = 6 / max(height, width)
    fig, ax = plt.subplots(figsize=(width * scale + 2.4, height * scale + 1.4))
    image = ax.imshow(
        np.ma.masked_invalid(highest), cmap=colours, vmin=0, vmax=1, extent=_extent(place)
    )
    georeference(ax, place)
    ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, label=label)
    fig.tight_layout()
    return fig


def _extent(place: dict | None):
    if place is None:
        return None
    left, bottom, right, top = place["bounds"]
    return (left, right, bottom, top)


def georeference(ax, place: dict | None) -> None:
    """Axes in map coordinates: `place` holds `bounds` (left, bottom, right, top), `crs`
    (its name, e.g. EPSG:32631) and `metres` (a projected CRS in metres: a scale bar)."""
    if place is None:
        ax.set_axis_off()
        return
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=6)
    unit = "m" if place["metres"] else "map units"
    ax.set_xlabel(f"x ({place['crs']}, {unit})", fontsize=7)
    ax.set_ylabel("y", fontsize=7)
    if place["metres"]:
        left, _, right, _ = place["bounds"]
        length = nice_length((right - left) / 5)
        label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
        bar = AnchoredSizeBar(
            ax.transData,
            length,
            label,
            "lower left",
            pad=0.4,
            frameon=True,
            fontproperties={"size": 7},
        )
        ax.add_artist(bar)


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^n not above `target` (a scale bar's length)."""
    power = 10 ** np.floor(np.log10(max(target, 1e-9)))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))
