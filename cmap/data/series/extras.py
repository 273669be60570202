"""Extra per-date tables (`<split>/<extra>.pq`, e.g. daily temperatures) joined to the series.

An extra table has `poi_id`, `date` and feature columns, usually one row per day. It is put
on a dense daily grid per point once (short gaps interpolated linearly, longer gaps refused),
so that any acquisition date of a sample reads its value with one gather, and growing degree
days are differences of one cumulative sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cmap.data.parquet import (
    check_unique_pairs,
    day_numbers,
    read_parquet,
    require_columns,
    require_numeric,
)
from cmap.data.series.table import SeriesTable
from cmap.data.weather import growing_degree_days
from cmap.errors import DataError, preview

EPOCH = np.datetime64("1970-01-01", "D")


def split_column(spec: str) -> tuple[str, str]:
    """`table.column` (e.g. `temperatures.temperature`) -> (table, column)."""
    table, _, column = spec.partition(".")
    if not table or not column:
        raise DataError(None, f"extra features are named 'table.column', got {spec!r}")
    return table, column


def _day_text(day: int) -> str:
    return str(EPOCH + np.timedelta64(int(day), "D"))


@dataclass
class DailyGrid:
    """Daily values of P points on one grid: values [G, F] float32; the grid index of day d
    (days since 1970-01-01) of point p is origin[p] + d, for first[p] <= d <= last[p]."""

    values: np.ndarray
    origin: np.ndarray
    first: np.ndarray
    last: np.ndarray
    columns: list[str]


def read_daily(
    path: Path, columns: list[str], point_ids: np.ndarray, max_gap_days: int
) -> DailyGrid:
    """Read `columns` of an extra table for `point_ids` (in that order) onto a daily grid.

    Missing days (absent rows or NaN values) are interpolated when a gap lasts at most
    `max_gap_days` days; a longer gap, a point without rows or a duplicate (poi_id, date)
    is an error naming the point and dates.
    """
    table = read_parquet(path)
    require_columns(table, path, ["poi_id", "date", *columns])
    require_numeric(table, path, columns)
    try:
        ids = pa.array(point_ids).cast(table["poi_id"].type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:  # e.g. string ids vs int64
        raise DataError(
            path, f"poi_id is {table['poi_id'].type}, unlike the features' identifiers"
        ) from err
    codes = pc.index_in(table["poi_id"], value_set=ids).fill_null(-1).to_numpy()
    days = day_numbers(table["date"], path).astype(np.int64)
    raw = np.column_stack(
        [table[c].to_numpy(zero_copy_only=False).astype(np.float64) for c in columns]
    )
    keep = (codes >= 0) & ~np.isnan(raw).any(axis=1)
    codes, days, raw = codes[keep], days[keep], raw[keep]
    order = np.lexsort((days, codes))
    codes, days, raw = codes[order], days[order], raw[order]

    present = np.zeros(len(point_ids), bool)
    present[codes] = True
    if not present.all():
        raise DataError(
            path,
            f"no {'/'.join(columns)} value for {int((~present).sum())} point(s), e.g. "
            f"{preview(point_ids[~present])}",
        )
    check_unique_pairs(codes, days, point_ids, path, "(poi_id, date)", True)
    same_point = codes[1:] == codes[:-1]
    step = np.diff(days)
    gap = same_point & (step > max_gap_days + 1)
    if gap.any():
        i = int(np.flatnonzero(gap)[0])
        raise DataError(
            path,
            f"{int(gap.sum())} gap(s) longer than {max_gap_days} day(s) in the daily series, "
            f"e.g. point {point_ids[codes[i]]} has no value from "
            f"{_day_text(days[i] + 1)} to {_day_text(days[i + 1] - 1)}; fill them or raise "
            "max_gap_days",
        )
    starts = np.flatnonzero(np.r_[True, ~same_point])
    first = days[starts]
    last = days[np.r_[starts[1:], len(days)] - 1]
    sizes = last - first + 1
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    grid_index = offsets[codes] + days - first[codes]  # increasing: rows are sorted
    grid = np.arange(int(sizes.sum()))
    values = np.column_stack([np.interp(grid, grid_index, raw[:, j]) for j in range(len(columns))])
    return DailyGrid(values.astype(np.float32), offsets - first, first, last, columns)


@dataclass
class SampleExtras:
    """What the dataset adds to each sample: extra input channels and/or thermal positions.

    channels: per extra table, (origin [S]: grid index of day 0 for each sample's point,
    values [G, F]). heat: (origin [S], cumulative growing degree days [G + 1] (entry g + 1
    sums the days up to grid index g), the cumulated value before each season start [S]).
    """

    channels: list[tuple[np.ndarray, np.ndarray]]
    heat: tuple[np.ndarray, np.ndarray, np.ndarray] | None

    def gather(
        self, idx: np.ndarray, dates: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Samples idx [N], acquisition dates [N, T] (days since 1970-01-01), mask [N, T]
        -> extra channels [N, T, F] and growing degree days [N, T] float32 (zeros at
        padding), each None when not configured."""
        channels = None
        if self.channels:
            parts = [values[np.where(mask, o[idx, None] + dates, 0)] for o, values in self.channels]
            channels = np.concatenate(parts, axis=-1) * mask[..., None]
        gdd = None
        if self.heat is not None:
            origin, cumulative, start = self.heat
            at = np.where(mask, origin[idx, None] + dates + 1, 0)
            gdd = ((cumulative[at] - start[idx, None]) * mask).astype(np.float32)
        return channels, gdd


def sample_extras(
    split_dir: Path,
    table: SeriesTable,
    channels: list[str],
    temperature: str | None,
    gdd_base: float,
    max_gap_days: int,
) -> SampleExtras:
    """Join the extra tables named by `channels` (`table.column`: values at each acquisition
    date become input channels) and `temperature` (growing degree days since each season
    start become the positions) to the samples of `table`.

    Every sample's point needs daily values from its first acquisition date (from its season
    start, for growing degree days) to its last.
    """
    specs = [split_column(c) for c in channels]
    heat_spec = split_column(temperature) if temperature else None
    points, sample_point = np.unique(table.poi_ids, return_inverse=True)
    first_date = np.asarray(table.dates[table.starts])
    last_date = np.asarray(table.dates[table.starts + table.lengths - 1])
    joined, heat = [], None
    for name in dict.fromkeys(t for t, _ in [*specs, *([heat_spec] if heat_spec else [])]):
        columns = [c for t, c in specs if t == name]
        wanted = list(
            dict.fromkeys(columns + ([heat_spec[1]] if heat_spec and heat_spec[0] == name else []))
        )
        path = split_dir / f"{name}.pq"
        if not path.exists():
            raise DataError(path, f"extra table '{name}' not found (named by {name}.<column>)")
        grid = read_daily(path, wanted, points, max_gap_days)
        needs_start = heat_spec is not None and heat_spec[0] == name
        needed_from = table.first_day if needs_start else first_date
        has_from, has_to = grid.first[sample_point], grid.last[sample_point]
        short = (has_from > needed_from) | (has_to < last_date)
        if short.any():
            s = int(np.flatnonzero(short)[0])
            raise DataError(
                path,
                f"{int(short.sum())} sample(s) lack daily values over their dates, e.g. point "
                f"{table.poi_ids[s]} season {table.seasons[s]} needs "
                f"{_day_text(needed_from[s])} to {_day_text(last_date[s])} but has "
                f"{_day_text(has_from[s])} to {_day_text(has_to[s])}",
            )
        origin = grid.origin[sample_point]
        if columns:
            joined.append((origin, grid.values[:, [wanted.index(c) for c in columns]]))
        if needs_start:
            cumulative = growing_degree_days(grid.values[:, wanted.index(heat_spec[1])], gdd_base)
            heat = (origin, cumulative, cumulative[origin + table.first_day])
    return SampleExtras(joined, heat)
