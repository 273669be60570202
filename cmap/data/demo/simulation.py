"""How the demo's series are made: weather, phenology on thermal time, reflectance mixing,
crop rotations, fields and clouds (see `cmap.data.demo` for the whole story)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from cmap.data.demo.calendars import (
    ARABLE,
    ARABLE_SHARE,
    BANDS,
    DRY,
    FLOWER,
    LEAF,
    PERMANENT,
    PHENOLOGY,
    REVISIT_DAYS,
    SEASON,
    SOIL,
    T_BASE,
)


def days_between(start: dt.date, end: dt.date) -> np.ndarray:
    return np.arange(np.datetime64(start), np.datetime64(end), dtype="datetime64[D]")


def month_index(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[M]").astype(np.int64) % 12


def climatology(days: np.ndarray) -> np.ndarray:
    """Normal-year daily mean temperature (°C) [D]: 12.5 ± 8 °C, warmest in late July."""
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64)
    return 12.5 - 8.0 * np.cos(2 * np.pi * (doy - 25) / 365.25)


def normal_gdd() -> tuple[np.ndarray, np.ndarray]:
    """Normal-year growing degree days since 1 Nov -> (days [D], gdd [D]), for calendars."""
    days = days_between(
        dt.date(2001, 11, 1), dt.date(2001, 11, 1) + dt.timedelta(SEASON.length + 60)
    )
    gdd = np.cumsum(np.maximum(climatology(days) - T_BASE, 0))
    return np.arange(len(days), dtype=np.float64), gdd


def temperatures(
    rng: np.random.Generator, days: np.ndarray, n_points: int, warm: np.ndarray
) -> np.ndarray:
    """Daily mean temperature [P, D] (°C); `warm` [D] is added to every point."""
    weather = np.zeros(len(days))
    shocks = rng.normal(0, 1.6, len(days))
    for i in range(1, len(days)):
        weather[i] = 0.8 * weather[i - 1] + shocks[i]
    offset = rng.normal(0, 0.7, (n_points, 1))
    local = rng.normal(0, 0.5, (n_points, len(days)))
    return (climatology(days) + warm + weather)[None, :] + offset + local


def reflectance(
    rng: np.random.Generator, cover: np.ndarray, leaf: np.ndarray, soil: np.ndarray, wet: np.ndarray
) -> np.ndarray:
    """cover [..., T, 3], leaf [..., 1, C], soil [..., 1, 1], wet [T] -> reflectance [..., T, C]."""
    green, dry, flower = (cover[..., i : i + 1] for i in range(3))
    bare = np.clip(1 - green - dry - flower, 0, 1)
    soil_spectrum = SOIL * soil * (1 - 0.15 * wet[:, None])
    value = green * LEAF * leaf + dry * DRY + flower * FLOWER + bare * soil_spectrum
    value = value * rng.normal(1, 0.02, value.shape[:-1] + (1,)) * rng.normal(1, 0.01, value.shape)
    return value + rng.normal(0, 0.003, value.shape)


def draw_names(rng: np.random.Generator, choices: dict[str, float], size) -> np.ndarray:
    names = list(choices)
    p = np.array(list(choices.values()))
    return np.array(names, dtype=object)[rng.choice(len(names), size=size, p=p / p.sum())]


def crop_sequences(
    rng: np.random.Generator,
    n_points: int,
    n_seasons: int,
    crops: dict[str, float] = ARABLE,
    arable_share: float = ARABLE_SHARE,
) -> np.ndarray:
    """Land cover per point and season [P, S]: permanent cover or an arable rotation of
    `crops` (name: share)."""
    arable = rng.random(n_points) < arable_share
    out = np.empty((n_points, n_seasons), dtype=object)
    out[~arable] = draw_names(rng, PERMANENT, (~arable).sum())[:, None]
    for s in range(n_seasons):
        draw = draw_names(rng, crops, arable.sum())
        if s:  # rotation: mostly avoid growing the same crop twice in a row
            again = (draw == out[arable, s - 1]) & (rng.random(len(draw)) < 0.8)
            draw[again] = draw_names(rng, crops, again.sum())
        out[arable, s] = draw
    return out


def class_of(cover: str) -> str:
    return cover if cover in ARABLE else "other"


def simulate_series(
    rng: np.random.Generator,
    covers: np.ndarray,
    thermal_day: np.ndarray,
    wet: np.ndarray,
    soil: np.ndarray,
    shift: float = 0.0,
) -> np.ndarray:
    """Reflectance [P, T, C] for covers [P] at normal-year-equivalent days [P, T], with every
    calendar `shift` days later."""
    n = len(covers)
    timing = (thermal_day - shift) * rng.normal(1, 0.02, (n, 1)) + rng.normal(0, 6, (n, 1))
    amplitude = rng.uniform(0.85, 1.05, (n, 1))
    fractions = np.zeros(thermal_day.shape + (3,))
    leaf = np.ones((n, 1, len(BANDS)))
    for name in np.unique(covers):
        rows = covers == name
        fractions[rows] = PHENOLOGY[name].at(timing[rows])
        leaf[rows] = np.array(PHENOLOGY[name].leaf)
    fractions[..., 0] *= amplitude
    fractions = np.clip(fractions, 0, 1)
    return reflectance(rng, fractions, leaf, soil[:, None, None], wet)


def wetness(days: np.ndarray) -> np.ndarray:
    """0 (dry summer) .. 1 (wet winter) soil moisture proxy by month."""
    return 0.5 + 0.5 * np.cos(2 * np.pi * month_index(days) / 12)


def equivalent_day(gdd_at_dates: np.ndarray) -> np.ndarray:
    normal_days, normal = normal_gdd()
    return np.interp(gdd_at_dates, normal, normal_days)


def to_int16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 10000), 1, 20000).astype(np.int16)


def acquisition_dates(first: dt.date, last: dt.date) -> np.ndarray:
    """Every 5th day from a fixed Sentinel-2-like orbit origin, within [first, last)."""
    origin = np.datetime64("2015-07-04")
    start = np.datetime64(first)
    start = start + (-(start - origin).astype(np.int64)) % REVISIT_DAYS
    return np.arange(start, np.datetime64(last), REVISIT_DAYS)


def smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Spatially correlated noise [size, size] with unit variance (Gaussian filter in Fourier)."""
    freq = np.fft.fftfreq(size)
    kernel = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) * (np.pi * scale) ** 2 * 2)
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * kernel))
    return (field - field.mean()) / (field.std() + 1e-12)


def field_layout(rng: np.random.Generator, size: int, min_side: int = 8) -> np.ndarray:
    """Field id per pixel [size, size], rectangles split recursively; -1 on field borders."""
    ids = np.full((size, size), -1)
    stack, count = [(0, 0, size, size)], 0
    while stack:
        r, c, h, w = stack.pop()
        axis = 0 if h >= w else 1
        side = (h, w)[axis]
        if side >= 2 * min_side and rng.random() < 0.85:
            cut = int(rng.integers(min_side, side - min_side + 1))
            if axis == 0:
                stack += [(r, c, cut, w), (r + cut, c, h - cut, w)]
            else:
                stack += [(r, c, h, cut), (r, c + cut, h, w - cut)]
            continue
        ids[r + 1 : r + h, c + 1 : c + w] = count  # leave a 1-pixel border (roads, hedges)
        count += 1
    return ids
