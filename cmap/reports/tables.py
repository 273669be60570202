"""Per-class scores from a confusion matrix: printed, and written as CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

COLUMNS = ("class", "precision", "recall", "f1", "support")


def per_class_scores(confusion: np.ndarray, classes: list[str]) -> list[dict]:
    """confusion [K, K] (true x predicted counts) -> one row per class.

    A score whose denominator is 0 (class never predicted, or absent) is 0, as in
    torchmetrics' default.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(confusion)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return [
        {"class": c, "precision": p, "recall": r, "f1": f, "support": int(s)}
        for c, p, r, f, s in zip(classes, precision, recall, f1, support)
    ]


def print_table(rows: list[dict], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout  # at call time, so a redirect of stdout holds
    width = max(len("class"), *(len(row["class"]) for row in rows))
    print(file=stream)  # a progress bar may still hold the line
    print(f"{'class':<{width}}  precision  recall     f1  support", file=stream)
    for row in rows:
        print(
            f"{row['class']:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  "
            f"{row['f1']:.4f}  {row['support']:7d}",
            file=stream,
        )
    stream.flush()


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
