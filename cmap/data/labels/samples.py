"""A samples folder (docs/reference/data_formats.md §1) cut out of a raster cube (`cmap samples`).

The labelled pixels (`cmap.data.labels.sources`) are split into train/val/test by a seed,
whole groups at a time (a field, a parcel, a block of pixels), so neighbouring pixels of one
field never fall in two splits. The cube is read window by window.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.module import CubeDataModule
from cmap.data.labels.parcels import parcel_series
from cmap.data.season import Season
from cmap.data.weather import Weather
from cmap.errors import DataError, preview
from cmap.io.atomic import atomic_path
from cmap.io.outputs import MARKER
from cmap.io.yaml_files import load_yaml

SPLITS = ("train", "val", "test")


def assign_splits(
    groups: np.ndarray, fractions: list[float], seed: int, labels: np.ndarray | None = None
) -> np.ndarray:
    """Split index per sample, whole groups at a time, in seeded random order; with labels,
    stratified: each class's groups (a group's class is its first sample's label) are shared
    out by `fractions` on their own."""
    unique, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    strata = (
        np.zeros(len(unique), np.int64)
        if labels is None
        else np.unique(labels[first], return_inverse=True)[1]
    )
    rng = np.random.default_rng(seed)
    shares = np.cumsum(fractions) / sum(fractions)
    split_of_group = np.empty(len(unique), np.int64)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        members = members[rng.permutation(len(members))]
        bounds = np.round(shares * len(members)).astype(int)
        split_of_group[members] = np.searchsorted(bounds, np.arange(len(members)), side="right")
    return split_of_group[inverse]


def pixel_rows(cube, samples: dict, window_size: int = 256) -> dict[str, np.ndarray]:
    """The samples' valid dates, window by window: sample [R] (index into `samples`),
    date [R] and values [R, C] (scaled)."""
    sample, date, values = [], [], []
    tile_row, tile_col = samples["row"] // window_size, samples["col"] // window_size
    for window in cube.windows(window_size):
        inside = np.flatnonzero(
            (tile_row == window.row_off // window_size)
            & (tile_col == window.col_off // window_size)
        )
        if not len(inside):
            continue
        data, valid = cube.read(window)  # [T, C, h, w], [T, h, w]
        r = samples["row"][inside] - window.row_off
        c = samples["col"][inside] - window.col_off
        dates, points = np.nonzero(valid[:, r, c])  # [T, P] -> valid (date, point) pairs
        sample.append(inside[points])
        date.append(cube.dates[dates])
        values.append(data[dates, :, r[points], c[points]])  # [R, C]
    return {
        "sample": np.concatenate(sample) if sample else np.zeros(0, np.int64),
        "date": np.concatenate(date) if date else np.zeros(0, "datetime64[D]"),
        "values": np.concatenate(values) if values else np.zeros((0, len(cube.bands)), np.float32),
    }


def write_splits(
    folder: Path,
    cube: Cube,
    year: int,
    first_day: np.datetime64,
    samples: dict,
    rows: dict,
    split: np.ndarray,
    weather: Weather | None = None,
) -> dict[str, int]:
    """`folder/train|val|test/`: features.pq (the samples' observations `rows`), labels.pq
    (with labels, of season `year`) and temperatures.pq (with `weather`: each sample's daily
    temperatures from `first_day` to the cube's last date); `split` [P] is each sample's
    split index. Returns the number of samples per split."""
    row_split = split[rows["sample"]]
    counts = {}
    for k, name in enumerate(SPLITS):
        part = folder / name
        part.mkdir(parents=True)
        keep = row_split == k
        features = {
            "poi_id": pa.array(samples["poi_id"][rows["sample"][keep]]),
            "date": pa.array(rows["date"][keep]),
        }
        for j, band in enumerate(cube.bands):
            features[band] = pa.array(rows["values"][keep, j].astype(np.float32))
        pq.write_table(pa.table(features), part / "features.pq")
        members = split == k
        counts[name] = int(members.sum())
        if weather is not None:
            cells = weather.cells_at(
                cube.crs, cube.transform, samples["row"][members], samples["col"][members]
            )
            daily = weather.daily_table(
                samples["poi_id"][members], cells, first_day, cube.dates[-1]
            )
            pq.write_table(daily, part / "temperatures.pq")
        if samples["label"] is not None:
            labels = {
                "poi_id": pa.array(samples["poi_id"][members]),
                "season": pa.array(np.full(members.sum(), year, np.int32)),
                "label": pa.array(samples["label"][members]),
            }
            pq.write_table(pa.table(labels), part / "labels.pq")
    return counts


def write_meta(
    folder: Path,
    bands: list[str],
    season: Season,
    source: str | list[str],
    counts: dict[str, int],
    seed: int,
    series: str,
    label_mapping: Path | None = None,
    weather: Weather | None = None,
) -> None:
    """The samples folder's marker, `meta.yaml` and copy of the label mapping."""
    (folder / MARKER).write_text("a samples folder written by cmap samples\n")
    meta = {
        "bands": bands,
        "scale": 1.0,  # values written already scaled
        "nodata": None,
        "season_start": season.start,
        "season_year": season.year,
        "source_cube": source,
        "samples_per_split": counts,
        "split_seed": seed,
        "series": series,
    }
    if label_mapping is not None:
        shutil.copyfile(label_mapping, folder / "label_mapping.yaml")
        meta["label_mapping"] = "label_mapping.yaml"
    if weather is not None:
        meta["weather"] = str(weather.path)
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def write_samples(
    cube: Cube,
    year: int,
    season: Season,
    samples: dict,
    fractions: list[float],
    seed: int,
    out: Path,
    label_mapping: Path | None = None,
    weather: Weather | None = None,
    series: str = "pixel",
) -> dict[str, int]:
    """Write the samples folder `out` (built aside, then moved into place); returns the
    number of samples per split. A label mapping is copied in and named by `meta.yaml`, so
    training maps the raw codes without being told; with `weather`, each split gets the
    daily temperatures of its samples' pixels (`temperatures.pq`, for `positions: gdd`)
    from the season start to the cube's last date. `series` `parcel_mean` or
    `parcel_median` makes each group (parcel) one sample (`cmap.data.labels.parcels`)."""
    first_day = np.datetime64(season.first_date(year), "D")
    rows = pixel_rows(cube, samples)
    if series != "pixel":
        samples, rows = parcel_series(samples, rows, series.removeprefix("parcel_"))
    split = assign_splits(samples["group"], fractions, seed, samples["label"])
    with atomic_path(out) as partial:
        partial.mkdir(parents=True)
        counts = write_splits(partial, cube, year, first_day, samples, rows, split, weather)
        source = str(cube.folder)
        write_meta(
            partial, cube.bands, season, source, counts, seed, series, label_mapping, weather
        )
    return counts


def cube_options(path: Path) -> dict:
    """CubeDataModule arguments from a YAML file: a config's `data` section (its
    `init_args`) or a plain mapping; `cube` is left to the command line."""
    content = load_yaml(path, "cube options") or {}
    if not isinstance(content, dict):
        raise DataError(path, "must be a mapping of CubeDataModule arguments or a config")
    section = content.get("data", content)
    section = section.get("init_args", section) if isinstance(section, dict) else section
    if not isinstance(section, dict):
        raise DataError(path, "its data section must be a mapping of CubeDataModule arguments")
    accepted = set(inspect.signature(CubeDataModule).parameters) - {"cube"}
    unknown = sorted(set(section) - accepted - {"cube"})
    if unknown:
        raise DataError(
            path, f"CubeDataModule takes no {unknown}; it takes {preview(sorted(accepted), 30)}"
        )
    return {k: v for k, v in section.items() if k != "cube"}


def report_unmapped(labels: np.ndarray, mapping: dict[str, str]) -> None:
    """Print the raw labels the mapping does not list (they train as `other`)."""
    codes, counts = np.unique(labels, return_counts=True)
    missing = [(c, n) for c, n in zip(codes, counts) if c not in mapping]
    if missing:
        listed = ", ".join(f"{c} ({n} pixels)" for c, n in missing)
        print(f"{len(missing)} label(s) not in the label mapping, trained as 'other': {listed}")
