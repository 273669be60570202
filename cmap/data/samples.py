"""Read and validate the samples layout (DATA_FORMATS.md §1) into flat numpy arrays.

One split (`train/`, `val/`, ...) becomes a `SeriesTable`: every observation row sorted by
(point, date) once, and one entry per (point, season) sample pointing at its slice of rows.
Items are then cheap slices; nothing is filtered per item.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from cmap.data.errors import DataError, preview

log = logging.getLogger(__name__)

KEY_COLUMNS = ("poi_id", "date")
LABEL_COLUMNS = ("poi_id", "season", "label")
EPOCH = dt.date(1970, 1, 1)
_DATE_OFFSET = 2**31  # shifts int32 day numbers to non-negative values inside a 64-bit sort key


@dataclass(frozen=True)
class SeasonWindow:
    """A season `S` runs `length` days from `start` (MM-DD) of year `S - 1`."""

    start: str = "11-01"
    length: int = 395

    def __post_init__(self):
        try:
            month, day = (int(v) for v in self.start.split("-"))
            dt.date(2001, month, day)
        except (ValueError, AttributeError) as err:
            raise DataError(None, f"season_start must be 'MM-DD', got {self.start!r}") from err
        if self.length <= 0:
            raise DataError(None, f"season_length must be positive, got {self.length}")

    def first_day(self, seasons: np.ndarray) -> np.ndarray:
        """Season numbers [S] -> first day of each season as days since 1970-01-01 [S]."""
        month, day = (int(v) for v in self.start.split("-"))
        unique, inverse = np.unique(seasons, return_inverse=True)
        firsts = np.array([(dt.date(int(s) - 1, month, day) - EPOCH).days for s in unique])
        return firsts.astype(np.int32)[inverse]


@dataclass
class SeriesTable:
    """All series of one split. R observation rows, S samples, C bands.

    values [R, C] float32 (scaled), dates [R] int32 (days since 1970-01-01),
    starts/lengths [S] int64 (slice of rows of each sample), first_day [S] int32 (season's
    first day), seasons [S] int32, labels [S] int64 (-1 = unlabelled), poi_ids [S].
    values and dates may also be `DiskArray`s left on disk (see `cmap.data.cache`).
    """

    values: np.ndarray
    dates: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    first_day: np.ndarray
    seasons: np.ndarray
    labels: np.ndarray
    poi_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def subset(self, keep: np.ndarray) -> SeriesTable:
        """Samples selected by an index or boolean array; observation rows are shared."""
        return SeriesTable(
            self.values,
            self.dates,
            self.starts[keep],
            self.lengths[keep],
            self.first_day[keep],
            self.seasons[keep],
            self.labels[keep],
            self.poi_ids[keep],
        )


def read_meta(root: str | Path) -> dict:
    """The dataset's optional `meta.yaml` as a dict ({} when absent)."""
    path = Path(root) / "meta.yaml"
    if not path.exists():
        return {}
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({err})") from err
    if not isinstance(meta, dict):
        raise DataError(path, f"must be a mapping of keys to values, found {type(meta).__name__}")
    return meta


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet file, turning missing or corrupted files into a `DataError`."""
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"cannot be read as parquet ({err})") from err


def feature_bands(path: Path) -> list[str]:
    """Band columns of a features file: every column but the keys, in file order."""
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(path, f"cannot be read as parquet ({err})") from err
    return [name for name in schema.names if name not in KEY_COLUMNS]


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


def _poi_type_ok(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)


def read_labels(path: Path) -> pa.Table:
    """labels.pq validated: poi_id (string/int), season (int), label (string/int -> string)."""
    table = read_parquet(path)
    require_columns(table, path, LABEL_COLUMNS)
    if not _poi_type_ok(table["poi_id"].type):
        raise DataError(
            path, f"column 'poi_id' must be string or integer, found {table['poi_id'].type}"
        )
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
    return pa.table(
        {
            "poi_id": table["poi_id"],
            "season": table["season"].cast(pa.int32()),
            "label": label.cast(pa.string()),
        }
    )


def check_unique_pairs(
    codes: np.ndarray, second: np.ndarray, ids: np.ndarray, path: Path, what: str, as_date: bool
):
    """Fail when a (code, second) pair appears twice; arrays must be sorted by (code, second)."""
    dup = np.flatnonzero((codes[1:] == codes[:-1]) & (second[1:] == second[:-1]))
    if len(dup):
        shown = second[dup[:5]].astype("datetime64[D]") if as_date else second[dup[:5]]
        examples = [f"({ids[codes[i]]}, {v})" for i, v in zip(dup[:5], shown)]
        raise DataError(path, f"{len(dup)} duplicate {what} row(s), e.g. {preview(examples)}")


def load_series(
    split_dir: str | Path,
    bands: list[str],
    classes: list[str],
    window: SeasonWindow,
    scale: float = 1.0,
    nodata: float | None = None,
    mapping: dict[str, str] | None = None,
    seasons: list[int] | None = None,
    labelled: bool = True,
    value_range: list[float] | None = None,
) -> SeriesTable:
    """Read `features.pq` (and `labels.pq` when `labelled`) of one split into a `SeriesTable`.

    Labels go through `mapping` (raw code -> class name) when given; labels that are not one
    of `classes` become `other` when it is a class, otherwise their samples are dropped and
    counted in the log.
    """
    split_dir = Path(split_dir)
    features_path = split_dir / "features.pq"
    features = read_parquet(features_path)
    require_columns(features, features_path, list(KEY_COLUMNS) + list(bands))
    if not _poi_type_ok(features["poi_id"].type):
        raise DataError(
            features_path,
            f"column 'poi_id' must be string or integer, found {features['poi_id'].type}",
        )
    require_numeric(features, features_path, bands, "band column")

    if labelled:
        labels_path = split_dir / "labels.pq"
        labels = read_labels(labels_path)
        if features["poi_id"].type != labels["poi_id"].type and not (
            pa.types.is_integer(features["poi_id"].type)
            and pa.types.is_integer(labels["poi_id"].type)
        ):
            raise DataError(
                labels_path,
                f"poi_id is {labels['poi_id'].type} but {features_path.name} has "
                f"{features['poi_id'].type}; both files must use the same identifiers",
            )
        if seasons is not None:
            labels = labels.filter(pc.is_in(labels["season"], pa.array(seasons, pa.int32())))
        point_ids = pc.unique(labels["poi_id"].cast(features["poi_id"].type))
    else:
        labels_path = features_path
        point_ids = pc.unique(features["poi_id"])

    # Observation rows: point code, date, values; sorted by (code, date) once.
    codes = pc.index_in(features["poi_id"], value_set=point_ids).fill_null(-1)
    codes = codes.to_numpy().astype(np.int64)
    dates = day_numbers(features["date"], features_path)
    raw = (
        np.column_stack(
            [
                features[b].to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                for b in bands
            ]
        )
        if len(features)
        else np.zeros((0, len(bands)))
    )
    if np.isinf(raw).any():
        rows, cols = np.nonzero(np.isinf(raw))
        raise DataError(
            features_path,
            f"{len(rows)} infinite value(s), e.g. band '{bands[cols[0]]}' of point "
            f"{features['poi_id'][int(rows[0])]}; use NaN or the nodata value for missing data",
        )
    order = np.lexsort((dates, codes))
    codes, dates, raw = codes[order], dates[order], raw[order]
    ids = point_ids.to_numpy(zero_copy_only=False)
    keep = codes >= 0
    check_unique_pairs(codes[keep], dates[keep], ids, features_path, "(poi_id, date)", True)
    missing = np.isnan(raw).any(axis=1)
    if nodata is not None:
        missing |= (raw == nodata).any(axis=1)
    keep &= ~missing
    codes, dates = codes[keep], dates[keep]
    values = (raw[keep] * scale).astype(np.float32)
    if value_range is not None:
        _check_range(values, value_range, bands, ids[codes], features_path)

    if labelled:
        label_codes = (
            pc.index_in(labels["poi_id"].cast(features["poi_id"].type), value_set=point_ids)
            .to_numpy(zero_copy_only=False)
            .astype(np.int64)
        )
        label_seasons = labels["season"].to_numpy().astype(np.int32)
        names = np.asarray(labels["label"].to_numpy(zero_copy_only=False), dtype=object)
        if mapping is not None:
            names = np.array([mapping.get(n, n) for n in names], dtype=object)
        class_index = {name: i for i, name in enumerate(classes)}
        fallback = class_index.get("other", -1)
        targets = np.array([class_index.get(n, fallback) for n in names], dtype=np.int64)
        dropped = targets < 0
        if dropped.any():
            log.warning(
                "%s: %d sample(s) with labels outside the classes %s dropped: %s",
                labels_path,
                int(dropped.sum()),
                classes,
                preview(sorted(set(names[dropped]))),
            )
        order = np.lexsort((label_seasons, label_codes))
        check_unique_pairs(
            label_codes[order], label_seasons[order], ids, labels_path, "(poi_id, season)", False
        )
        absent = np.setdiff1d(np.unique(label_codes), np.unique(codes[codes >= 0]))
        if len(absent):
            raise DataError(
                labels_path,
                f"{len(absent)} labelled point(s) have no valid row in {features_path.name}, "
                f"e.g. {preview(ids[absent])}",
            )
        sel = ~dropped
        label_codes, label_seasons, targets = label_codes[sel], label_seasons[sel], targets[sel]
    else:
        label_codes, label_seasons, targets = _unlabelled_samples(codes, dates, window, seasons)

    first = window.first_day(label_seasons)
    key = (codes << 32) + (dates.astype(np.int64) + _DATE_OFFSET)
    lo = np.searchsorted(key, (label_codes << 32) + (first.astype(np.int64) + _DATE_OFFSET))
    hi = np.searchsorted(
        key, (label_codes << 32) + (first.astype(np.int64) + window.length + _DATE_OFFSET)
    )
    lengths = hi - lo
    empty = lengths == 0
    if empty.any() and labelled:
        log.warning(
            "%s: %d sample(s) without a valid date in their season window skipped, e.g. %s",
            labels_path,
            int(empty.sum()),
            preview(
                [
                    f"({ids[c]}, {s})"
                    for c, s in zip(label_codes[empty][:5], label_seasons[empty][:5])
                ]
            ),
        )
    full = ~empty
    return SeriesTable(
        values=values,
        dates=dates,
        starts=lo[full].astype(np.int64),
        lengths=lengths[full].astype(np.int64),
        first_day=first[full],
        seasons=label_seasons[full],
        labels=targets[full],
        poi_ids=ids[label_codes[full]],
    )


def _check_range(values, value_range, bands, poi_ids, path: Path) -> None:
    """Valid (scaled) values must lie in [low, high]: values outside mean a wrong scale or
    sensor, or corrupted data."""
    low, high = value_range
    outside = (values < low) | (values > high)
    if outside.any():
        rows, cols = np.nonzero(outside)
        raise DataError(
            path,
            f"{len(rows)} value(s) outside the declared range [{low:g}, {high:g}] (after scale), "
            f"e.g. {float(values[rows[0], cols[0]]):g} in band '{bands[cols[0]]}' of point "
            f"{poi_ids[rows[0]]}; check scale and value_range",
        )


def _unlabelled_samples(
    codes: np.ndarray, dates: np.ndarray, window: SeasonWindow, seasons: list[int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (point, season) pair that has observations, for folders without labels."""
    years = np.unique(dates.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970)
    candidates = np.union1d(years, years + 1).astype(np.int32)
    if seasons is not None:
        candidates = np.intersect1d(candidates, np.asarray(seasons, np.int32))
    points = np.unique(codes)
    return (
        np.repeat(points, len(candidates)),
        np.tile(candidates, len(points)),
        np.full(len(points) * len(candidates), -1, np.int64),
    )


def read_mapping(path: str | Path) -> dict[str, str]:
    """A label-mapping YAML (class: [codes]) -> {code: class}."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "label mapping file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({err})") from err
    if not isinstance(content, dict):
        raise DataError(path, "must map each class name to a list of codes")
    mapping: dict[str, str] = {}
    for name, codes in content.items():
        codes = codes if isinstance(codes, list) else [codes]
        for code in codes:
            code = str(code)
            if code in mapping and mapping[code] != name:
                raise DataError(
                    path, f"code {code!r} is listed under both {mapping[code]!r} and {name!r}"
                )
            mapping[code] = str(name)
    return mapping
