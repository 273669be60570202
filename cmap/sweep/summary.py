"""A sweep's table of trials: summary.csv and summary.md in the sweep folder."""

from __future__ import annotations

import csv
from pathlib import Path

from cmap.io.atomic import atomic_path


def summary(study, folder: Path, metric: str) -> list[dict]:
    """One row per trial (number, state, value, values, seconds, log dir), written as
    summary.csv and summary.md in `folder`; returns the rows."""
    rows = []
    for t in study.trials:
        seconds = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete
            else None
        )
        rows.append(
            {"trial": t.number, "state": t.state.name, metric: t.value}
            | t.params
            | {
                "seconds": None if seconds is None else round(seconds, 1),
                "log_dir": t.user_attrs.get("log_dir"),
            }
        )
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(folder / "summary.csv") as partial, open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)
    show = lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(show(row.get(k)) for k in keys) + " |" for row in rows]
    with atomic_path(folder / "summary.md") as partial:
        partial.write_text("\n".join(lines) + "\n")
    return rows
