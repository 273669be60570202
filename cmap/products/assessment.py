"""`cmap assess`: a class map against reference labels. The confusion matrix and its plain
metrics, and with the map's classes as strata, the area and accuracy estimates of Olofsson
et al. (2014) with standard errors and 95 % confidence intervals (`estimators`); written as
JSON, a per-class CSV and a figure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from cmap.io.atomic import atomic_path
from cmap.io.maps import NODATA
from cmap.io.outputs import refuse_existing
from cmap.products.estimators import Z95, sample_metrics, stratified_estimates
from cmap.products.reference import map_values, open_map, reference_labels
from cmap.reports.areas import area_figure
from cmap.reports.figures import plt


def pixel_area(grid) -> tuple[float, str]:
    """A pixel's area in hectares (projected CRS in metres), else in squared CRS units."""
    size = abs(grid.transform.a * grid.transform.e)
    if grid.crs is not None and grid.crs.is_projected and grid.crs.linear_units == "metre":
        return size / 1e4, "ha"
    return size, "squared CRS units"


def assess(
    map_path: Path,
    reference: Path,
    output: Path,
    label_column: str = "label",
    label_band: str | None = None,
    label_mapping: Path | None = None,
    buffer: float = 0.0,
    overwrite: bool = False,
) -> dict:
    """Assess `map_path`; writes `<output>.json`, `<output>.csv`, `<output>.png` and returns
    the JSON's content."""
    paths = [output.with_name(output.name + suffix) for suffix in (".json", ".csv", ".png")]
    refuse_existing(*paths, overwrite=overwrite)
    grid, classes = open_map(map_path)
    found = reference_labels(
        reference, grid, classes, label_column, label_band, label_mapping, buffer
    )
    k = len(classes)
    mapped_class, mapped = map_values(map_path, grid, found["row"], found["col"], k)
    covered = mapped_class != NODATA
    counts = np.zeros((k, k), np.int64)  # rows: map, columns: reference
    np.add.at(counts, (mapped_class[covered], found["label"][covered]), 1)
    plain, strata = sample_metrics(counts), stratified_estimates(counts, mapped)
    area, unit = pixel_area(grid)
    total = mapped[strata["sampled"]].sum() * area
    rows = []
    for j, name in enumerate(classes):
        estimate, se = strata["area_share"][j] * total, strata["area_share_se"][j] * total
        rows.append(
            {
                "class": name,
                "mapped_pixels": int(mapped[j]),
                "mapped_area": mapped[j] * area,
                "reference_samples": int(counts[:, j].sum()),
                "map_samples": int(counts[j].sum()),
                "users_accuracy": strata["users_accuracy"][j],
                "users_accuracy_se": strata["users_accuracy_se"][j],
                "producers_accuracy": strata["producers_accuracy"][j],
                "producers_accuracy_se": strata["producers_accuracy_se"][j],
                "f1": plain["f1"][j],
                "estimated_area": estimate,
                "estimated_area_se": se,
                "ci95_low": estimate - Z95 * se,
                "ci95_high": estimate + Z95 * se,
            }
        )
    result = {
        "map": str(map_path),
        "reference": str(reference),
        "area_unit": unit,
        "pixel_area": area,
        "samples": int(covered.sum()),
        "samples_without_map_value": int((~covered).sum()),
        "strata_without_samples": [c for c, s in zip(classes, strata["sampled"]) if not s],
        "overall_accuracy": strata["overall_accuracy"],
        "overall_accuracy_se": strata["overall_accuracy_se"],
        "sample_overall_accuracy": plain["overall_accuracy"],
        "kappa": plain["kappa"],
        "macro_f1": plain["macro_f1"],
        "classes": rows,
        "confusion": {"rows": "map", "columns": "reference", "counts": counts.tolist()},
    }
    write_outputs(result, paths)
    return result


def write_outputs(result: dict, paths: list[Path]) -> None:
    rows = result["classes"]
    with atomic_path(paths[0]) as partial:
        partial.write_text(json.dumps(_plain(result), indent=1, allow_nan=True) + "\n")
    with atomic_path(paths[1]) as partial, open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows
        )
    estimate = np.array([r["estimated_area"] for r in rows])
    figure = area_figure(
        [r["class"] for r in rows],
        np.array([r["mapped_area"] for r in rows]),
        estimate,
        np.array([r["ci95_high"] for r in rows]) - estimate,
        result["area_unit"],
        f"{Path(result['map']).name}: overall accuracy {result['overall_accuracy']:.3f} "
        f"+- {Z95 * result['overall_accuracy_se']:.3f} ({result['samples']} samples)",
    )
    with atomic_path(paths[2]) as partial:
        figure.savefig(partial, format="png", dpi=120)
    plt.close(figure)


def summary(result: dict) -> str:
    """The assessment as a few printed lines: overall figures, then one row per class."""
    unit = result["area_unit"]
    lines = [
        f"{result['samples']} reference samples; overall accuracy "
        f"{result['overall_accuracy']:.4f} +- {Z95 * result['overall_accuracy_se']:.4f} "
        f"(95 % CI, area-weighted), kappa {result['kappa']:.4f}, macro-F1 {result['macro_f1']:.4f}",
        f"{'class':<14} {'UA':>6} {'PA':>6} {'F1':>6} {'mapped':>12} {'estimated':>12} "
        f"{'+- 95 % CI':>11}  ({unit})",
    ]
    for r in result["classes"]:
        half = r["ci95_high"] - r["estimated_area"]
        lines.append(
            f"{r['class'][:14]:<14} {r['users_accuracy']:6.3f} {r['producers_accuracy']:6.3f} "
            f"{r['f1']:6.3f} {r['mapped_area']:12.2f} {r['estimated_area']:12.2f} {half:11.2f}"
        )
    if result["samples_without_map_value"]:
        lines.append(
            f"{result['samples_without_map_value']} samples fall where the map has "
            "no value (left out)"
        )
    if result["strata_without_samples"]:
        lines.append(
            "no reference sample in the map's "
            + ", ".join(result["strata_without_samples"])
            + ": their mapped area is left out of the estimates (draw some with cmap reference)"
        )
    return "\n".join(lines)


def _plain(value):
    """NumPy scalars and NaN -> JSON values (NaN: null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
