"""What the demo simulates: bands, classes, crop calendars (cover fractions through a normal
year), spectra, crop shares and their RPG codes, and monthly cloudiness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmap.data.season import Season

BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
CLASSES = ["other", "ble_tendre", "ble_dur", "orge", "colza", "mais", "tournesol"]
SEASON = Season()  # the default season: 1 November, 395 days
REVISIT_DAYS = 5
T_BASE = 0.0

# Endmember reflectances per band (B02 ... B12).
LEAF = np.array([0.03, 0.08, 0.03, 0.12, 0.30, 0.40, 0.44, 0.45, 0.22, 0.11])
DRY = np.array([0.09, 0.13, 0.17, 0.21, 0.25, 0.28, 0.30, 0.32, 0.42, 0.33])
FLOWER = np.array([0.045, 0.16, 0.14, 0.22, 0.32, 0.38, 0.41, 0.42, 0.24, 0.14])
SOIL = np.array([0.07, 0.10, 0.13, 0.15, 0.17, 0.18, 0.19, 0.20, 0.30, 0.26])
CLOUD = np.array([0.50, 0.50, 0.50, 0.50, 0.52, 0.53, 0.54, 0.54, 0.42, 0.32])


@dataclass(frozen=True)
class Cover:
    """Calendar of (day since 1 Nov in a normal year, green, dry, flower) cover fractions."""

    keys: tuple[tuple[float, float, float, float], ...]
    leaf: tuple[float, ...] = (1.0,) * 10  # per-band factor on the leaf spectrum

    def at(self, day: np.ndarray) -> np.ndarray:
        """Normal-year days [...] -> cover fractions [..., 3] (green, dry, flower)."""
        keys = np.array(self.keys)
        return np.stack([np.interp(day, keys[:, 0], keys[:, i]) for i in (1, 2, 3)], axis=-1)


def _shifted(cover: Cover, shift: float, peak: float, leaf: tuple[float, ...]) -> Cover:
    keys = tuple((d + (shift if d > 0 else 0), g * peak, dr, f) for d, g, dr, f in cover.keys)
    return Cover(keys, leaf)


WHEAT = Cover(
    (
        (0, 0, 0.05, 0),
        (20, 0.02, 0, 0),
        (60, 0.15, 0, 0),
        (110, 0.25, 0, 0),
        (150, 0.6, 0, 0),
        (180, 0.9, 0, 0),
        (215, 0.85, 0.05, 0),
        (235, 0.4, 0.45, 0),
        (250, 0.05, 0.8, 0),
        (258, 0, 0.35, 0),
        (300, 0.05, 0.25, 0),
        (395, 0.08, 0.1, 0),
    )
)
PHENOLOGY: dict[str, Cover] = {
    "ble_tendre": WHEAT,
    "ble_dur": _shifted(
        WHEAT, 5, 0.93, (1.03, 1.02, 1.03, 1.01, 1.0, 0.99, 0.985, 0.985, 1.01, 1.015)
    ),
    "orge": _shifted(WHEAT, -12, 1.0, (1.0, 1.02, 1.0, 1.02, 1.02, 1.03, 1.03, 1.03, 1.0, 1.0)),
    "colza": Cover(
        (
            (0, 0.45, 0, 0),
            (60, 0.4, 0, 0),
            (110, 0.45, 0, 0),
            (140, 0.75, 0, 0),
            (155, 0.55, 0, 0.35),
            (175, 0.5, 0, 0.4),
            (190, 0.8, 0, 0.05),
            (215, 0.7, 0.15, 0),
            (240, 0.15, 0.7, 0),
            (250, 0, 0.3, 0),
            (300, 0.1, 0.1, 0),
            (395, 0.45, 0, 0),
        ),
        (1, 1, 1, 1, 1.05, 1.1, 1.12, 1.12, 0.95, 0.95),
    ),
    "mais": Cover(
        (
            (0, 0.05, 0.1, 0),
            (170, 0.05, 0, 0),
            (185, 0.02, 0, 0),
            (200, 0.08, 0, 0),
            (240, 0.6, 0, 0),
            (270, 0.95, 0, 0),
            (300, 0.85, 0.08, 0),
            (330, 0.3, 0.55, 0),
            (345, 0.02, 0.3, 0),
            (395, 0.05, 0.15, 0),
        ),
        (0.95, 1.0, 0.95, 1.0, 1.05, 1.08, 1.1, 1.1, 0.92, 0.9),
    ),
    "tournesol": Cover(
        (
            (0, 0.05, 0.1, 0),
            (165, 0.03, 0, 0),
            (190, 0.1, 0, 0),
            (230, 0.75, 0, 0),
            (255, 0.9, 0, 0),
            (275, 0.6, 0.25, 0),
            (300, 0.1, 0.7, 0),
            (320, 0, 0.3, 0),
            (395, 0.05, 0.1, 0),
        ),
        (1, 1.05, 1, 1, 1.08, 1.12, 1.15, 1.15, 0.95, 0.92),
    ),
    "meadow": Cover(
        (
            (0, 0.6, 0.1, 0),
            (100, 0.55, 0.1, 0),
            (170, 0.9, 0, 0),
            (205, 0.9, 0.05, 0),
            (210, 0.35, 0.3, 0),
            (235, 0.75, 0.05, 0),
            (265, 0.55, 0.3, 0),
            (300, 0.45, 0.35, 0),
            (340, 0.65, 0.1, 0),
            (395, 0.6, 0.1, 0),
        )
    ),
    "forest": Cover(
        (
            (0, 0.5, 0.2, 0),
            (30, 0.35, 0.1, 0),
            (160, 0.35, 0.05, 0),
            (185, 0.8, 0, 0),
            (210, 0.95, 0, 0),
            (330, 0.9, 0, 0),
            (365, 0.6, 0.2, 0),
            (395, 0.45, 0.2, 0),
        ),
        (0.7, 0.7, 0.7, 0.8, 0.85, 0.85, 0.85, 0.85, 0.75, 0.7),
    ),
    "fallow": Cover(
        (
            (0, 0.15, 0.1, 0),
            (120, 0.2, 0.05, 0),
            (190, 0.45, 0.05, 0),
            (250, 0.3, 0.3, 0),
            (300, 0.2, 0.25, 0),
            (395, 0.15, 0.1, 0),
        )
    ),
}
# Crops of arable points (share among arable land) and their RPG codes.
ARABLE = {
    "ble_tendre": 0.36,
    "ble_dur": 0.045,
    "orge": 0.18,
    "colza": 0.10,
    "mais": 0.22,
    "tournesol": 0.095,
}
PERMANENT = {"meadow": 0.6, "forest": 0.25, "fallow": 0.15}  # the `other` class
ARABLE_SHARE = 0.7
CODES = {
    "ble_tendre": ["BTH"],
    "ble_dur": ["BDH"],
    "orge": ["ORH"],
    "colza": ["CZH"],
    "mais": ["MIS", "MIE"],
    "tournesol": ["TRN"],
    "meadow": ["PPH"],
    "forest": ["BOP"],
    "fallow": ["J5M"],
}
MAPPING = {
    "ble_tendre": ["BTH", "BTP"],
    "ble_dur": ["BDH", "BDP"],
    "orge": ["ORH", "ORP"],
    "colza": ["CZH", "CZP"],
    "mais": ["MIS", "MIE"],
    "tournesol": ["TRN"],
}
# Mean regional cloud cover by month (Jan ... Dec): winter cloudier.
CLOUDINESS = np.array([0.7, 0.65, 0.55, 0.5, 0.4, 0.3, 0.2, 0.2, 0.3, 0.5, 0.65, 0.7])


@dataclass(frozen=True)
class Region:
    """A farming region of the demo (the defaults: the demo's own region).

    warmth: °C added to every day (warmer: every stage earlier in calendar days).
    sowing_shift: days every crop calendar is moved by practice (positive: later).
    soil: factor on the soils' brightness.
    crops: shares of the crops among arable land (default `ARABLE`; crops left out are not
        grown there).
    arable_share: share of arable points (default `ARABLE_SHARE`; the rest is `other`).
    name: prefix of the point ids, so that regions pooled together keep distinct points.
    """

    warmth: float = 0.0
    sowing_shift: float = 0.0
    soil: float = 1.0
    crops: dict[str, float] | None = None
    arable_share: float | None = None
    name: str = ""

    def arable(self) -> dict[str, float]:
        return dict(self.crops) if self.crops else ARABLE

    def share(self) -> float:
        return ARABLE_SHARE if self.arable_share is None else self.arable_share
