"""`labels.pq` of the samples layout: one class label per (point, season)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cmap.data.parquet import read_parquet, require_columns, require_ids
from cmap.errors import DataError

LABEL_COLUMNS = ("poi_id", "season", "label")


def read_labels(path: Path) -> pa.Table:
    """labels.pq validated: poi_id (string/int), season (int), label (string/int -> string)."""
    table = read_parquet(path)
    require_columns(table, path, LABEL_COLUMNS)
    table = require_ids(table, path)
    if not pa.types.is_integer(table["season"].type):
        raise DataError(
            path, f"column 'season' must be an integer year, found {table['season'].type}"
        )
    label = table["label"]
    if not (
        pa.types.is_string(label.type)
        or pa.types.is_large_string(label.type)
        or pa.types.is_integer(label.type)
    ):
        raise DataError(
            path, f"column 'label' must be a string or integer code, found {label.type}"
        )
    for name in LABEL_COLUMNS:
        if table[name].null_count:
            raise DataError(path, f"column '{name}' has {table[name].null_count} empty value(s)")
    blank = pc.sum(pc.equal(pc.utf8_trim_whitespace(label.cast(pa.string())), "")).as_py()
    if blank:
        raise DataError(path, f"column 'label' has {blank} blank value(s)")
    return pa.table(
        {
            "poi_id": table["poi_id"],
            "season": table["season"].cast(pa.int32()),
            "label": label.cast(pa.string()),
        }
    )
