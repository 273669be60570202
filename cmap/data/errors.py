"""Errors raised for bad input data: one short paragraph naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that does not follow the documented formats (see DATA_FORMATS.md)."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


def preview(values, limit: int = 5) -> str:
    """A short, readable list of offending values: `a, b, c (and 12 more)`."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown if len(values) <= limit else f"{shown} (and {len(values) - limit} more)"
