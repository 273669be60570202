"""Writing the demo dataset: the samples layout, a raster cube with labelled points, and
the metadata (meta.yaml, label_mapping.yaml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cmap.data.demo.calendars import (
    ARABLE,
    ARABLE_SHARE,
    BANDS,
    CLASSES,
    CLOUD,
    CLOUDINESS,
    CODES,
    MAPPING,
    PERMANENT,
    SEASON,
    T_BASE,
    Region,
)
from cmap.data.demo.simulation import (
    acquisition_dates,
    crop_sequences,
    days_between,
    draw_names,
    equivalent_day,
    field_layout,
    month_index,
    simulate_series,
    smooth_noise,
    temperatures,
    to_int16,
    wetness,
)
from cmap.data.demo.truth import write_truth
from cmap.errors import ConfigError


def generate_samples(
    out: Path,
    points: int,
    seasons: list[int],
    warm_season: int | None,
    seed: int,
    region: Region = Region(),  # noqa: B008 (frozen)
) -> dict[str, int]:
    """Write the samples layout under `out`; returns the number of samples per split."""
    rng = np.random.default_rng(seed)
    seasons = sorted(seasons)
    first = SEASON.first_date(seasons[0])
    last = SEASON.first_date(seasons[-1]) + dt.timedelta(SEASON.length)
    days = days_between(first, last)
    warm = np.full(len(days), float(region.warmth))
    if warm_season is not None:
        start = np.datetime64(SEASON.first_date(warm_season))
        warm[(days >= start) & (days < start + 365)] += 2.5
    temps = temperatures(rng, days, points, warm)

    dates = acquisition_dates(first, last)
    date_index = (dates - days[0]).astype(np.int64)
    cloud_cover = np.clip(
        rng.beta(2, 2, len(dates)) - 0.5 + CLOUDINESS[month_index(dates)], 0, 0.97
    )
    cloudy = rng.random((points, len(dates))) < cloud_cover[None, :]
    undetected = cloudy & (rng.random(cloudy.shape) < 0.03)

    land = crop_sequences(rng, points, len(seasons), region.arable(), region.share())
    soil = rng.uniform(0.7, 1.3, points) * region.soil
    values = np.zeros((points, len(dates), len(BANDS)))
    for s, season in enumerate(seasons):
        begin = np.datetime64(SEASON.first_date(season))
        end = begin + (365 if s < len(seasons) - 1 else SEASON.length)
        in_season = (dates >= begin) & (dates < end)
        offset = (begin - days[0]).astype(np.int64)
        gdd = np.cumsum(np.maximum(temps[:, offset:] - T_BASE, 0), axis=1)
        at_dates = gdd[:, date_index[in_season] - offset]
        values[:, in_season] = simulate_series(
            rng,
            land[:, s],
            equivalent_day(at_dates),
            wetness(dates[in_season]),
            soil,
            region.sowing_shift,
        )
    blend = rng.uniform(0.2, 0.9, undetected.shape)[..., None]
    values = np.where(undetected[..., None], (1 - blend) * values + blend * CLOUD, values)
    keep = ~cloudy | undetected

    prefix = f"{region.name}_" if region.name else ""
    ids = np.array([f"{prefix}p{i:05d}" for i in range(points)], dtype=object)
    split = rng.choice(3, size=points, p=[0.6, 0.2, 0.2])
    counts = {}
    for k, name in enumerate(("train", "val", "test")):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(split == k)
        p_idx, d_idx = np.nonzero(keep[members])
        p_idx = members[p_idx]
        columns = {"poi_id": pa.array(ids[p_idx], pa.string()), "date": pa.array(dates[d_idx])}
        encoded = to_int16(values[p_idx, d_idx])
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


def check_region(region: Region) -> None:
    unknown = set(region.crops or {}) - set(ARABLE)
    if unknown:
        raise ConfigError(f"demo region: unknown crops {sorted(unknown)}; crops are {list(ARABLE)}")
    if region.crops and (min(region.crops.values()) < 0 or sum(region.crops.values()) <= 0):
        raise ConfigError(
            f"demo region: crop shares must be >= 0 with a positive sum: {region.crops}"
        )
    if not 0 <= region.share() <= 1 or region.soil <= 0:
        raise ConfigError("demo region: arable_share must be in [0, 1] and soil positive")


def generate_cube(out: Path, size: int, season: int, seed: int) -> int:
    """Write `out/cube/<date>.tif` for one season and `out/cube_points.csv`; returns #dates."""
    import rasterio
    from rasterio.transform import from_origin, xy

    rng = np.random.default_rng(seed + 1)
    cube = out / "cube"
    cube.mkdir(parents=True, exist_ok=True)
    fields = field_layout(rng, size)
    n_fields = fields.max() + 1
    rows, cols = np.indices((size, size))
    outside = rows + cols > 1.6 * size  # a corner outside the area of interest
    fields[outside] = -1

    covers = np.where(
        rng.random(n_fields) < ARABLE_SHARE,
        draw_names(rng, ARABLE, n_fields),
        draw_names(rng, PERMANENT, n_fields),
    )
    valid = fields >= 0
    pixel_cover = covers[fields[valid]]
    first = SEASON.first_date(season)
    days = days_between(first, first + dt.timedelta(SEASON.length))
    temps = temperatures(rng, days, 1, np.zeros(len(days)))[0]
    gdd = np.cumsum(np.maximum(temps - T_BASE, 0))
    dates = acquisition_dates(first, first + dt.timedelta(365))
    thermal = equivalent_day(gdd[(dates - days[0]).astype(np.int64)])
    # Field-level timing plus smaller pixel-level variation.
    field_shift = rng.normal(0, 5, n_fields)[fields[valid]]
    thermal_day = thermal[None, :] + field_shift[:, None] + rng.normal(0, 1.5, (valid.sum(), 1))
    soil = rng.uniform(0.75, 1.25, n_fields)[fields[valid]] * (
        1 + 0.05 * smooth_noise(rng, size, 3)[valid]
    )
    values = simulate_series(rng, pixel_cover, thermal_day, wetness(dates), soil)  # [M, T, C]

    transform = from_origin(370_000.0, 4_830_000.0, 10.0, 10.0)  # UTM 31N, near Toulouse
    cloud_cover = np.clip(rng.beta(2, 2, len(dates)) - 0.5 + CLOUDINESS[month_index(dates)], 0, 1)
    written = 0
    for t, date in enumerate(dates):
        if cloud_cover[t] > 0.9:
            continue  # a fully cloudy acquisition: no product delivered
        image = np.zeros((len(BANDS), size, size), np.int16)
        image[:, valid] = to_int16(values[:, t]).T
        clouds = smooth_noise(rng, size, 4) < np.quantile(
            smooth_noise(rng, size, 4), cloud_cover[t]
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
    write_truth(out, fields, covers, "EPSG:32631", transform)
    return written


def write_metadata(out: Path, args: dict) -> None:
    meta = {
        "bands": BANDS,
        "scale": 0.0001,
        "nodata": 0,
        "sensor": "synthetic Sentinel-2 L2A-like (cmap demo)",
        "season_start": SEASON.start,
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
    region: Region | None = None,
) -> dict[str, int]:
    """Write the whole demo dataset under `out` (the samples of `region`, default the demo's
    own; the cube is always the demo's); returns samples per split and cube dates."""
    check_region(region or Region())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seasons = sorted(int(s) for s in seasons)
    counts = generate_samples(out, points, seasons, warm_season, seed, region or Region())
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
        }
        | ({"region": asdict(region)} if region else {}),
    )
    return counts
