"""The season: when a crop season starts and how long it lasts (the one place its default is
written). Season `S` runs `length` days from `start` (MM-DD) of year `S - 1` (seasons named by
the year they end in, the default: a November start for winter crops) or of year `S` (named
by the year they start in: `year: start`, e.g. a calendar-year season from 01-01)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from cmap.errors import DataError

DEFAULT_START = "11-01"  # winter crops are sown from October, so a season starts in November
DEFAULT_LENGTH = 395  # 13 months: summer crops are harvested until the following November
EPOCH = dt.date(1970, 1, 1)


MAX_LENGTH = 3660  # ten years: day numbers stay far inside the sort keys' range


@dataclass(frozen=True)
class Season:
    """Season `S` runs `length` days from `start` (MM-DD) of year `S - 1` (`year: end`) or
    of year `S` (`year: start`)."""

    start: str = DEFAULT_START
    length: int = DEFAULT_LENGTH
    year: str = "end"

    def __post_init__(self):
        try:
            month, day = (int(v) for v in self.start.split("-"))
            dt.date(2001, month, day)
        except (ValueError, AttributeError) as err:
            raise DataError(None, f"season_start must be 'MM-DD', got {self.start!r}") from err
        if self.year not in ("end", "start"):
            raise DataError(None, f"season_year must be 'end' or 'start', got {self.year!r}")
        if not 0 < self.length <= MAX_LENGTH:
            raise DataError(
                None, f"season_length must be 1 to {MAX_LENGTH} days, got {self.length}"
            )

    @property
    def month_day(self) -> tuple[int, int]:
        month, day = (int(v) for v in self.start.split("-"))
        return month, day

    def first_date(self, season: int) -> dt.date:
        """The first day of season `season` (a year, 2 to 9999)."""
        if not 2 <= int(season) <= 9999:
            raise DataError(
                None, f"a season is the year it {self.year}s in (2 to 9999), got {season}"
            )
        return dt.date(int(season) - (self.year == "end"), *self.month_day)

    def first_day(self, seasons: np.ndarray) -> np.ndarray:
        """Season numbers [S] -> first day of each season as days since 1970-01-01 [S]."""
        unique, inverse = np.unique(np.asarray(seasons), return_inverse=True)
        firsts = np.array([(self.first_date(s) - EPOCH).days for s in unique])
        return firsts.astype(np.int32)[inverse]
