"""Data module arguments checked when the module is built, before any file is read or any
epoch runs: each refusal names the argument and what it accepts."""

from __future__ import annotations

from cmap.errors import ConfigError

RULES = {
    "bands": (lambda v: len(v) > 0, "at least one band name (null: every band)"),
    "classes": (lambda v: len(v) > 0, "at least one class name (null: from the data)"),
    "fraction": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "max_per_class": (lambda v: v >= 1, "at least 1 (null: no cap)"),
    "max_dates": (lambda v: v >= 1, "at least 1 (null: no cap)"),
    "date_sample": (lambda v: v >= 1, "at least 1 (null: every date)"),
    "date_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "noise_std": (lambda v: v >= 0, "0 or more"),
    "time_shift": (lambda v: v >= 0, "0 or more (days)"),
    "class_balance": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "batch_size": (lambda v: v == "auto" or v >= 1, 'at least 1, or "auto"'),
    "num_workers": (lambda v: v >= 0, "0 or more"),
    "max_gap_days": (lambda v: v >= 0, "0 or more"),
    "min_dates": (lambda v: v >= 1, "at least 1"),
    "min_span": (lambda v: v >= 0, "0 or more (null: half the season)"),
    "value_range": (lambda v: len(v) == 2 and v[0] < v[1], "[low, high] with low < high"),
    "window_size": (lambda v: v >= 16 and v % 16 == 0, "a multiple of 16"),
    "window_offset": (lambda v: v >= 0, "0 or more"),
    "val_windows": (lambda v: 0 < v < 1, "in (0, 1)"),
    "pixels_per_epoch": (lambda v: v >= 1, "at least 1 (null: the training windows' area)"),
}


def check_arguments(**values) -> None:
    """Refuse the first argument outside what it accepts (None: the documented default)."""
    for name, value in values.items():
        accepted, words = RULES[name]
        if value is not None and not accepted(value):
            raise ConfigError(f"{name} must be {words}, got {value!r}")
