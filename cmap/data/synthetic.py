"""Synthetic Sentinel-2 L2A-like crop time series over French crop calendars.

Deterministic by seed. Writes a samples folder (DATA_FORMATS.md §1: train/val/test with
features.pq, labels.pq, temperatures.pq; meta.yaml; label_mapping.yaml with RPG codes) and a
small raster cube (§2: one GeoTIFF per date, UTM 31N, 10 m) with its labelled points.

How the series are made:
- Daily air temperature per point: a seasonal cycle, regional weather (AR(1)), a per-point
  offset, and a warmer `warm_season`. Phenology runs on growing degree days (base 0 °C) from
  the season start, so in the warm season every stage comes earlier in calendar days.
- Each class has a calendar of green, dry and flower cover fractions (normal-year days since
  1 November); a date's cover is read at the normal-year day with the same thermal time,
  jittered per point in timing and amplitude.
- Reflectance mixes leaf, dry matter, yellow flowers and a per-point soil by those fractions,
  with class-specific leaf spectra, per-date and per-band noise.
- 5-day revisit; cloudy dates removed with a month-dependent probability (winter cloudier);
  a few undetected bright clouds are left in.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

BANDS = ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
CLASSES = ["other", "ble_tendre", "ble_dur", "orge", "colza", "mais", "tournesol"]
SEASON_START = (11, 1)
SEASON_LENGTH = 395
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


def season_first_day(season: int) -> dt.date:
    return dt.date(season - 1, *SEASON_START)


def _days(start: dt.date, end: dt.date) -> np.ndarray:
    return np.arange(np.datetime64(start), np.datetime64(end), dtype="datetime64[D]")


def _months(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[M]").astype(np.int64) % 12


def climatology(days: np.ndarray) -> np.ndarray:
    """Normal-year daily mean temperature (°C) [D]: 12.5 ± 8 °C, warmest in late July."""
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64)
    return 12.5 - 8.0 * np.cos(2 * np.pi * (doy - 25) / 365.25)


def normal_gdd() -> tuple[np.ndarray, np.ndarray]:
    """Normal-year growing degree days since 1 Nov -> (days [D], gdd [D]), for calendars."""
    days = _days(dt.date(2001, 11, 1), dt.date(2001, 11, 1) + dt.timedelta(SEASON_LENGTH + 60))
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
    """cover [..., T, 3], leaf [..., 1, B], soil [..., 1, 1], wet [T] -> reflectance [..., T, B]."""
    green, dry, flower = (cover[..., i : i + 1] for i in range(3))
    bare = np.clip(1 - green - dry - flower, 0, 1)
    soil_spectrum = SOIL * soil * (1 - 0.15 * wet[:, None])
    value = green * LEAF * leaf + dry * DRY + flower * FLOWER + bare * soil_spectrum
    value = value * rng.normal(1, 0.02, value.shape[:-1] + (1,)) * rng.normal(1, 0.01, value.shape)
    return value + rng.normal(0, 0.003, value.shape)


def _draw(rng: np.random.Generator, choices: dict[str, float], size) -> np.ndarray:
    names = list(choices)
    p = np.array(list(choices.values()))
    return np.array(names, dtype=object)[rng.choice(len(names), size=size, p=p / p.sum())]


def crop_sequences(rng: np.random.Generator, n_points: int, n_seasons: int) -> np.ndarray:
    """Land cover per point and season [P, S]: permanent cover or an arable rotation."""
    arable = rng.random(n_points) < ARABLE_SHARE
    out = np.empty((n_points, n_seasons), dtype=object)
    out[~arable] = _draw(rng, PERMANENT, (~arable).sum())[:, None]
    for s in range(n_seasons):
        draw = _draw(rng, ARABLE, arable.sum())
        if s:  # rotation: mostly avoid growing the same crop twice in a row
            again = (draw == out[arable, s - 1]) & (rng.random(len(draw)) < 0.8)
            draw[again] = _draw(rng, ARABLE, again.sum())
        out[arable, s] = draw
    return out


def class_of(cover: str) -> str:
    return cover if cover in ARABLE else "other"


def _series(
    rng: np.random.Generator,
    covers: np.ndarray,
    thermal_day: np.ndarray,
    wet: np.ndarray,
    soil: np.ndarray,
) -> np.ndarray:
    """Reflectance [P, T, B] for covers [P] at normal-year-equivalent days [P, T]."""
    n = len(covers)
    timing = thermal_day * rng.normal(1, 0.02, (n, 1)) + rng.normal(0, 6, (n, 1))
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


def _wetness(days: np.ndarray) -> np.ndarray:
    """0 (dry summer) .. 1 (wet winter) soil moisture proxy by month."""
    return 0.5 + 0.5 * np.cos(2 * np.pi * _months(days) / 12)


def _equivalent_day(gdd_at_dates: np.ndarray) -> np.ndarray:
    normal_days, normal = normal_gdd()
    return np.interp(gdd_at_dates, normal, normal_days)


def _to_int16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 10000), 1, 20000).astype(np.int16)


def acquisition_dates(first: dt.date, last: dt.date) -> np.ndarray:
    """Every 5th day from a fixed Sentinel-2-like orbit origin, within [first, last)."""
    origin = np.datetime64("2015-07-04")
    start = np.datetime64(first)
    start = start + (-(start - origin).astype(np.int64)) % REVISIT_DAYS
    return np.arange(start, np.datetime64(last), REVISIT_DAYS)


def generate_samples(
    out: Path, points: int, seasons: list[int], warm_season: int | None, seed: int
) -> dict[str, int]:
    """Write the samples layout under `out`; returns the number of samples per split."""
    rng = np.random.default_rng(seed)
    seasons = sorted(seasons)
    first = season_first_day(seasons[0])
    last = season_first_day(seasons[-1]) + dt.timedelta(SEASON_LENGTH)
    days = _days(first, last)
    warm = np.zeros(len(days))
    if warm_season is not None:
        start = np.datetime64(season_first_day(warm_season))
        warm[(days >= start) & (days < start + 365)] = 2.5
    temps = temperatures(rng, days, points, warm)

    dates = acquisition_dates(first, last)
    date_index = (dates - days[0]).astype(np.int64)
    cloud_cover = np.clip(rng.beta(2, 2, len(dates)) - 0.5 + CLOUDINESS[_months(dates)], 0, 0.97)
    cloudy = rng.random((points, len(dates))) < cloud_cover[None, :]
    undetected = cloudy & (rng.random(cloudy.shape) < 0.03)

    land = crop_sequences(rng, points, len(seasons))
    soil = rng.uniform(0.7, 1.3, points)
    values = np.zeros((points, len(dates), len(BANDS)))
    for s, season in enumerate(seasons):
        begin = np.datetime64(season_first_day(season))
        end = begin + (365 if s < len(seasons) - 1 else SEASON_LENGTH)
        in_season = (dates >= begin) & (dates < end)
        offset = (begin - days[0]).astype(np.int64)
        gdd = np.cumsum(np.maximum(temps[:, offset:] - T_BASE, 0), axis=1)
        at_dates = gdd[:, date_index[in_season] - offset]
        values[:, in_season] = _series(
            rng, land[:, s], _equivalent_day(at_dates), _wetness(dates[in_season]), soil
        )
    blend = rng.uniform(0.2, 0.9, undetected.shape)[..., None]
    values = np.where(undetected[..., None], (1 - blend) * values + blend * CLOUD, values)
    keep = ~cloudy | undetected

    ids = np.array([f"p{i:05d}" for i in range(points)], dtype=object)
    split = rng.choice(3, size=points, p=[0.6, 0.2, 0.2])
    counts = {}
    for k, name in enumerate(("train", "val", "test")):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(split == k)
        p_idx, d_idx = np.nonzero(keep[members])
        p_idx = members[p_idx]
        columns = {"poi_id": pa.array(ids[p_idx], pa.string()), "date": pa.array(dates[d_idx])}
        encoded = _to_int16(values[p_idx, d_idx])
        columns |= {b: pa.array(encoded[:, i]) for i, b in enumerate(BANDS)}
        pq.write_table(pa.table(columns), folder / "features.pq", compression="zstd")

        codes = [[rng.choice(CODES[c]) for c in row] for row in land[members]]
        pq.write_table(
            pa.table(
                {
                    "poi_id": pa.array(np.repeat(ids[members], len(seasons)), pa.string()),
                    "season": pa.array(np.tile(seasons, len(members)), pa.int32()),
                    "label": pa.array([c for row in codes for c in row], pa.string()),
                }
            ),
            folder / "labels.pq",
            compression="zstd",
        )
        pq.write_table(
            pa.table(
                {
                    "poi_id": pa.array(np.repeat(ids[members], len(days)), pa.string()),
                    "date": pa.array(np.tile(days, len(members))),
                    "temperature": pa.array(np.round(temps[members].ravel(), 1).astype(np.float32)),
                }
            ),
            folder / "temperatures.pq",
            compression="zstd",
            use_dictionary=["poi_id", "temperature"],
        )
        counts[name] = len(members) * len(seasons)
    return counts


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Spatially correlated noise [size, size] with unit variance (Gaussian filter in Fourier)."""
    freq = np.fft.fftfreq(size)
    kernel = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) * (np.pi * scale) ** 2 * 2)
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * kernel))
    return (field - field.mean()) / (field.std() + 1e-12)


def _fields(rng: np.random.Generator, size: int, min_side: int = 8) -> np.ndarray:
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


def generate_cube(out: Path, size: int, season: int, seed: int) -> int:
    """Write `out/cube/<date>.tif` for one season and `out/cube_points.csv`; returns #dates."""
    import rasterio
    from rasterio.transform import from_origin, xy

    rng = np.random.default_rng(seed + 1)
    cube = out / "cube"
    cube.mkdir(parents=True, exist_ok=True)
    fields = _fields(rng, size)
    n_fields = fields.max() + 1
    rows, cols = np.indices((size, size))
    outside = rows + cols > 1.6 * size  # a corner outside the area of interest
    fields[outside] = -1

    covers = np.where(
        rng.random(n_fields) < ARABLE_SHARE,
        _draw(rng, ARABLE, n_fields),
        _draw(rng, PERMANENT, n_fields),
    )
    valid = fields >= 0
    pixel_cover = covers[fields[valid]]
    first = season_first_day(season)
    days = _days(first, first + dt.timedelta(SEASON_LENGTH))
    temps = temperatures(rng, days, 1, np.zeros(len(days)))[0]
    gdd = np.cumsum(np.maximum(temps - T_BASE, 0))
    dates = acquisition_dates(first, first + dt.timedelta(365))
    thermal = _equivalent_day(gdd[(dates - days[0]).astype(np.int64)])
    # Field-level timing plus smaller pixel-level variation.
    field_shift = rng.normal(0, 5, n_fields)[fields[valid]]
    thermal_day = thermal[None, :] + field_shift[:, None] + rng.normal(0, 1.5, (valid.sum(), 1))
    soil = rng.uniform(0.75, 1.25, n_fields)[fields[valid]] * (
        1 + 0.05 * _smooth_noise(rng, size, 3)[valid]
    )
    values = _series(rng, pixel_cover, thermal_day, _wetness(dates), soil)  # [M, T, B]

    transform = from_origin(370_000.0, 4_830_000.0, 10.0, 10.0)  # UTM 31N, near Toulouse
    cloud_cover = np.clip(rng.beta(2, 2, len(dates)) - 0.5 + CLOUDINESS[_months(dates)], 0, 1)
    written = 0
    for t, date in enumerate(dates):
        if cloud_cover[t] > 0.9:
            continue  # a fully cloudy acquisition: no product delivered
        image = np.zeros((len(BANDS), size, size), np.int16)
        image[:, valid] = _to_int16(values[:, t]).T
        clouds = _smooth_noise(rng, size, 4) < np.quantile(
            _smooth_noise(rng, size, 4), cloud_cover[t]
        )
        image[:, clouds] = 0
        profile = dict(
            driver="GTiff",
            width=size,
            height=size,
            count=len(BANDS),
            dtype="int16",
            crs="EPSG:32631",
            transform=transform,
            nodata=0,
            tiled=True,
            blockxsize=16,
            blockysize=16,
            compress="deflate",
            predictor=2,
        )
        with rasterio.open(cube / f"{date}.tif", "w", **profile) as dst:
            dst.write(image)
            dst.descriptions = tuple(BANDS)
        written += 1

    pick = []
    for f in range(n_fields):
        r, c = np.nonzero(fields == f)
        for i in rng.choice(len(r), size=min(3, len(r)), replace=False):
            pick.append((f, r[i], c[i]))
    lines = ["poi_id,x,y,label,field_id"]
    for n, (f, r, c) in enumerate(pick):
        x, y = xy(transform, r, c)  # pixel centre
        lines.append(f"c{n:04d},{x:.1f},{y:.1f},{rng.choice(CODES[covers[f]])},{f}")
    (out / "cube_points.csv").write_text("\n".join(lines) + "\n")
    return written


def write_metadata(out: Path, args: dict) -> None:
    meta = {
        "bands": BANDS,
        "scale": 0.0001,
        "nodata": 0,
        "sensor": "synthetic Sentinel-2 L2A-like (cmap.data.synthetic)",
        "season_start": f"{SEASON_START[0]:02d}-{SEASON_START[1]:02d}",
        "classes": CLASSES,
        "label_mapping": "label_mapping.yaml",
        "generator": args,
    }
    (out / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (out / "label_mapping.yaml").write_text(
        "# RPG crop codes -> cmap classes; unlisted codes (PPH, BOP, J5M...) become `other`.\n"
        + yaml.safe_dump(MAPPING, sort_keys=False, default_flow_style=True)
    )


def generate(
    out: str | Path,
    points: int = 800,
    seasons: list[int] = (2019, 2020, 2021),
    warm_season: int | None = 2020,
    cube_size: int = 40,
    seed: int = 0,
) -> dict[str, int]:
    """Write the whole demo dataset under `out`; returns samples per split and cube dates."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seasons = sorted(int(s) for s in seasons)
    counts = generate_samples(out, points, seasons, warm_season, seed)
    if cube_size:
        counts["cube_dates"] = generate_cube(out, cube_size, seasons[-1], seed)
    write_metadata(
        out,
        {
            "points": points,
            "seasons": seasons,
            "warm_season": warm_season,
            "cube_size": cube_size,
            "seed": seed,
        },
    )
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cmap.data.synthetic", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--points", type=int, default=800, help="number of points")
    parser.add_argument("--seasons", type=int, nargs="+", default=[2019, 2020, 2021])
    parser.add_argument("--warm-season", type=int, default=2020, help="season 2.5 °C warmer")
    parser.add_argument("--cube-size", type=int, default=40, help="cube side in pixels, 0 = none")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "meta.yaml").exists():
        parser.error(f"{out} already holds a dataset; choose another --out or remove it first")
    counts = generate(
        args.out, args.points, args.seasons, args.warm_season, args.cube_size, args.seed
    )
    print(" ".join(f"{k}={v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
