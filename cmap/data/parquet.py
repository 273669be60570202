"""Reading parquet tables with checks that name the file, the column and what was found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cmap.errors import DataError, preview


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet file, turning missing or corrupted files into a `DataError`."""
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"cannot be read as parquet ({err})") from err


def read_columns(path: Path) -> list[str]:
    """Column names of a parquet file, without reading its data."""
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        return pq.read_schema(path).names
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"cannot be read as parquet ({err})") from err


def require_columns(table: pa.Table, path: Path, required: tuple[str, ...] | list[str]):
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {preview(missing)}; the file has {preview(table.column_names, 20)}",
        )


def require_numeric(table: pa.Table, path: Path, columns: list[str], what: str = "column"):
    for column in columns:
        kind = table[column].type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise DataError(path, f"{what} '{column}' must be numeric, found {kind}")


def require_ids(table: pa.Table, path: Path) -> pa.Table:
    """`poi_id` must be string or integer, never null; returns the table with its ids as
    int64 or large_string, so that files storing them in other widths (int32 and int64,
    string and large_string) compare."""
    column = table["poi_id"]
    kind = column.type
    if pa.types.is_integer(kind):
        normal = pa.int64()
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        normal = pa.large_string()
    else:
        raise DataError(path, f"column 'poi_id' must be string or integer, found {kind}")
    if column.null_count:
        raise DataError(path, f"{column.null_count} row(s) without a poi_id")
    return table.set_column(table.schema.get_field_index("poi_id"), "poi_id", column.cast(normal))


def day_numbers(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    """A date32/date64/timestamp column -> days since 1970-01-01 [R] int32."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        column = pc.floor_temporal(column, unit="day")
    if pa.types.is_timestamp(kind) or pa.types.is_date64(kind):
        column = pc.cast(column, pa.date32())
    elif not pa.types.is_date32(kind):
        raise DataError(path, f"column 'date' must be a date or timestamp, found {kind}")
    if column.null_count:
        raise DataError(path, f"column 'date' has {column.null_count} empty value(s)")
    return column.cast(pa.int32()).to_numpy().astype(np.int32)


def check_unique_pairs(
    codes: np.ndarray, second: np.ndarray, ids: np.ndarray, path: Path, what: str, as_date: bool
):
    """Fail when a (code, second) pair appears twice; arrays must be sorted by (code, second)."""
    dup = np.flatnonzero((codes[1:] == codes[:-1]) & (second[1:] == second[:-1]))
    if len(dup):
        shown = second[dup[:5]].astype("datetime64[D]") if as_date else second[dup[:5]]
        examples = [f"({ids[codes[i]]}, {v})" for i, v in zip(dup[:5], shown)]
        raise DataError(path, f"{len(dup)} duplicate {what} row(s), e.g. {preview(examples)}")
