"""Point predictions (the parquet `cmap predict` writes over samples: poi_id, season, label,
confidence, one `p_<class>` column per class) read and rewritten with new probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cmap.errors import DataError
from cmap.io.atomic import atomic_path
from cmap.io.maps import PRIOR_TAG


def read_points(path: Path) -> tuple[pa.Table, list[str]]:
    """The table and its probability columns, refused in one line when it has none."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataError(path, f"cannot be read as parquet ({err})") from err
    columns = [c for c in table.column_names if c.startswith("p_")]
    if len(columns) < 2 or not len(table):
        raise DataError(path, "holds no predictions with `p_<class>` columns (cmap predict's)")
    return table, columns


def probabilities_of(table: pa.Table, columns: list[str]) -> np.ndarray:
    """[N, K] float64"""
    return np.stack([table[c].to_numpy() for c in columns], axis=1).astype(np.float64)


def stored_prior(table: pa.Table) -> str:
    return (table.schema.metadata or {}).get(PRIOR_TAG.encode(), b"").decode()


def write_points(table, columns, p: np.ndarray, metadata: dict, output: Path) -> None:
    """`table` with probabilities p [N, K], their label and confidence, and `metadata`."""
    classes = np.array([c.removeprefix("p_") for c in columns], dtype=object)
    replaced = {c: p[:, k] for k, c in enumerate(columns)}
    replaced |= {"label": classes[p.argmax(axis=1)], "confidence": p.max(axis=1)}
    for name, values in replaced.items():
        if name in table.column_names:
            kind = table.schema.field(name).type
            table = table.set_column(table.column_names.index(name), name, pa.array(values, kind))
    with atomic_path(output) as partial:
        pq.write_table(table.replace_schema_metadata(metadata), partial)
