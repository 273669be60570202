"""The samples layout (docs/reference/data_formats.md §1) read into a `SeriesTable`, in three steps:
read the observation rows (`features.pq`), read the samples (`labels.pq`, or every
(point, season) with observations), and cut each sample's rows to its season.

Rows are sorted by (point, date) once; a sample is a slice of them, so items are cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cmap.data.parquet import (
    check_unique_pairs,
    day_numbers,
    read_columns,
    read_parquet,
    require_columns,
    require_ids,
    require_numeric,
)
from cmap.data.season import Season
from cmap.data.series.labels import read_labels
from cmap.data.series.table import SeriesTable
from cmap.errors import DataError, preview

log = logging.getLogger(__name__)

KEY_COLUMNS = ("poi_id", "date")
_DATE_OFFSET = 2**31  # shifts int32 day numbers to non-negative values inside a 64-bit sort key


def feature_bands(path: Path) -> list[str]:
    """Band columns of a features file: every column but the keys, in file order."""
    return [name for name in read_columns(path) if name not in KEY_COLUMNS]


@dataclass
class Observations:
    """Valid observation rows sorted by (point, date): codes [R] (index into ids), dates [R]
    int32 (days since 1970-01-01), values [R, C] float32 (scaled); ids [P] point ids."""

    codes: np.ndarray
    dates: np.ndarray
    values: np.ndarray
    ids: np.ndarray
    id_type: pa.DataType


@dataclass
class Samples:
    """Samples before windowing: codes [S] (index into the points), seasons [S], labels [S]."""

    codes: np.ndarray
    seasons: np.ndarray
    labels: np.ndarray


def read_observations(
    path: Path,
    bands: list[str],
    scale: float,
    nodata: float | None,
    value_range: list[float] | None,
    labels: pa.Table | None = None,
    labels_path: Path | None = None,
) -> Observations:
    """Rows of `features.pq` for the points of `labels` (every point without), with the rows
    holding NaN or `nodata` in any band dropped."""
    features = read_parquet(path)
    require_columns(features, path, list(KEY_COLUMNS) + list(bands))
    features = require_ids(features, path)
    require_numeric(features, path, bands, "band column")
    if labels is not None:
        _check_id_types(features["poi_id"].type, labels["poi_id"].type, labels_path)
        point_ids = pc.unique(labels["poi_id"].cast(features["poi_id"].type))
    else:
        point_ids = pc.unique(features["poi_id"])
    codes = pc.index_in(features["poi_id"], value_set=point_ids).fill_null(-1)
    codes = codes.to_numpy().astype(np.int64)
    dates = day_numbers(features["date"], path)
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
            path,
            f"{len(rows)} infinite value(s), e.g. band '{bands[cols[0]]}' of point "
            f"{features['poi_id'][int(rows[0])]}; use NaN or the nodata value for missing data",
        )
    order = np.lexsort((dates, codes))
    codes, dates, raw = codes[order], dates[order], raw[order]
    ids = point_ids.to_numpy(zero_copy_only=False)
    keep = codes >= 0
    check_unique_pairs(codes[keep], dates[keep], ids, path, "(poi_id, date)", True)
    missing = np.isnan(raw).any(axis=1)
    if nodata is not None:
        missing |= (raw == nodata).any(axis=1)
    keep &= ~missing
    observations = Observations(
        codes[keep],
        dates[keep],
        (raw[keep] * scale).astype(np.float32),
        ids,
        features["poi_id"].type,
    )
    if value_range is not None:
        check_range(observations, value_range, bands, path)
    return observations


def check_range(rows: Observations, value_range: list[float], bands: list[str], path: Path):
    """Valid (scaled) values must lie in [low, high]: values outside mean a wrong scale or
    sensor, or corrupted data."""
    low, high = value_range
    outside = (rows.values < low) | (rows.values > high)
    if outside.any():
        r, c = np.nonzero(outside)
        raise DataError(
            path,
            f"{len(r)} value(s) outside the declared range [{low:g}, {high:g}] (after scale), "
            f"e.g. {float(rows.values[r[0], c[0]]):g} in band '{bands[c[0]]}' of point "
            f"{rows.ids[rows.codes[r[0]]]}; check scale and value_range",
        )


def labelled_samples(
    labels: pa.Table,
    path: Path,
    rows: Observations,
    classes: list[str],
    mapping: dict[str, str] | None,
) -> Samples:
    """One sample per row of `labels.pq`. Labels go through `mapping` (code -> class); labels
    that are not classes become `other` when it is a class, else their samples are dropped
    (and counted in the log)."""
    codes = (
        pc.index_in(
            labels["poi_id"].cast(rows.id_type), value_set=pa.array(rows.ids, type=rows.id_type)
        )
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
    seasons = labels["season"].to_numpy().astype(np.int32)
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
            path,
            int(dropped.sum()),
            classes,
            preview(sorted(set(names[dropped]))),
        )
    order = np.lexsort((seasons, codes))
    check_unique_pairs(codes[order], seasons[order], rows.ids, path, "(poi_id, season)", False)
    absent = np.setdiff1d(np.unique(codes), np.unique(rows.codes))
    if len(absent):
        raise DataError(
            path,
            f"{len(absent)} labelled point(s) have no valid row in features.pq, "
            f"e.g. {preview(rows.ids[absent])}",
        )
    keep = ~dropped
    return Samples(codes[keep], seasons[keep], targets[keep])


def unlabelled_samples(rows: Observations, seasons: list[int] | None) -> Samples:
    """Every (point, season) pair that may have observations, for folders without labels
    (pairs without any date in their season are dropped by `cut_to_seasons`)."""
    years = rows.dates.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    years = np.unique(years)
    candidates = np.union1d(years, years + 1).astype(np.int32)
    if seasons is not None:
        candidates = np.intersect1d(candidates, np.asarray(seasons, np.int32))
    points = np.unique(rows.codes)
    return Samples(
        np.repeat(points, len(candidates)),
        np.tile(candidates, len(points)),
        np.full(len(points) * len(candidates), -1, np.int64),
    )


def cut_to_seasons(
    rows: Observations, samples: Samples, season: Season, path: Path, warn_empty: bool
) -> SeriesTable:
    """Each sample's rows within its season; samples without any are skipped."""
    first = season.first_day(samples.seasons)
    key = (rows.codes << 32) + (rows.dates.astype(np.int64) + _DATE_OFFSET)
    base = (samples.codes << 32) + _DATE_OFFSET
    lo = np.searchsorted(key, base + first.astype(np.int64))
    hi = np.searchsorted(key, base + first.astype(np.int64) + season.length)
    lengths = hi - lo
    empty = lengths == 0
    if empty.any() and warn_empty:
        examples = [
            f"({rows.ids[c]}, {s})"
            for c, s in zip(samples.codes[empty][:5], samples.seasons[empty][:5])
        ]
        log.warning(
            "%s: %d sample(s) without a valid date in their season skipped, e.g. %s",
            path,
            int(empty.sum()),
            preview(examples),
        )
    full = ~empty
    return SeriesTable(
        values=rows.values,
        dates=rows.dates,
        starts=lo[full].astype(np.int64),
        lengths=lengths[full].astype(np.int64),
        first_day=first[full],
        seasons=samples.seasons[full],
        labels=samples.labels[full],
        poi_ids=rows.ids[samples.codes[full]],
    )


def drop_fragments(table: SeriesTable, min_dates: int, min_span: int, path: Path) -> SeriesTable:
    """Unlabelled samples that hold at least `min_dates` dates spanning at least `min_span`
    days: the overlapping ends of season windows (a few dates of a neighbouring season) are
    not series to learn from."""
    last = table.starts + table.lengths - 1
    span = table.dates[last] - table.dates[table.starts]
    keep = (table.lengths >= min_dates) & (span >= min_span)
    if not keep.all():
        log.info(
            "%s: %d of %d unlabelled season(s) dropped as fragments (fewer than %d dates or "
            "spanning under %d days; see min_dates, min_span)",
            path,
            int((~keep).sum()),
            len(table),
            min_dates,
            min_span,
        )
    return table.subset(keep)


def load_series(
    split_dir: str | Path,
    bands: list[str],
    classes: list[str],
    season: Season,
    scale: float = 1.0,
    nodata: float | None = None,
    mapping: dict[str, str] | None = None,
    seasons: list[int] | None = None,
    labelled: bool = True,
    value_range: list[float] | None = None,
    min_dates: int = 1,
    min_span: int = 0,
) -> SeriesTable:
    """Read `features.pq` (and `labels.pq` when `labelled`) of one split into a `SeriesTable`:
    read the rows, read the samples, cut each sample to its season (unlabelled samples also
    drop fragments, see `drop_fragments`)."""
    split_dir = Path(split_dir)
    features_path = split_dir / "features.pq"
    labels_path, labels = features_path, None
    if labelled:
        labels_path = split_dir / "labels.pq"
        labels = read_labels(labels_path)
        if seasons is not None:
            labels = labels.filter(pc.is_in(labels["season"], pa.array(seasons, pa.int32())))
    rows = read_observations(features_path, bands, scale, nodata, value_range, labels, labels_path)
    if labels is None:
        table = cut_to_seasons(rows, unlabelled_samples(rows, seasons), season, labels_path, False)
        return drop_fragments(table, min_dates, min_span, features_path)
    samples = labelled_samples(labels, labels_path, rows, classes, mapping)
    return cut_to_seasons(rows, samples, season, labels_path, warn_empty=True)


def _check_id_types(features: pa.DataType, labels: pa.DataType, labels_path: Path) -> None:
    """The labels' poi_id type must be the features' (any two integer types match)."""
    if features != labels and not (pa.types.is_integer(features) and pa.types.is_integer(labels)):
        raise DataError(
            labels_path,
            f"poi_id is {labels} but features.pq has {features}; both files must use the "
            "same identifiers",
        )
