"""Plain-text metric reports."""

from __future__ import annotations

import sys
from typing import TextIO


def print_metrics(metrics: dict[str, float], stream: TextIO | None = None) -> None:
    """One `name value` line per metric, easy to grep or parse."""
    stream = stream or sys.stdout  # at call time, so a redirect of stdout holds
    for name, value in metrics.items():
        print(f"{name} {value:.4f}", file=stream)
    stream.flush()
