"""`cmap samples TILES OUT --tiles true ...`: one samples folder cut out of many tiles on a
Dask cluster (the engine of `cmap predict --tiles`).

Two passes. The survey (a task per tile, cheap) lists each tile's groups (fields, parcels)
and their pixel counts; the coordinator gives every group to one tile (the one holding most
of its pixels: overlapping tiles never cut a parcel twice) and splits the groups, over all
tiles at once, exactly as `cmap samples` splits one cube's. The cut (a task per tile, reads
the cube) writes the tile's share of each split to `OUT.parts/<tile>/`; a finished part is
kept by a retried task or a re-run. The parts are then joined into OUT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cmap.data.cubes.module import CubeDataModule
from cmap.data.labels.parcels import parcel_series
from cmap.data.labels.samples import SPLITS, assign_splits, pixel_rows, write_meta, write_splits
from cmap.data.labels.sources import LabelSource, count_points
from cmap.data.weather import Weather
from cmap.errors import CmapError, ConfigError, DataError, preview
from cmap.io.atomic import atomic_path, remove
from cmap.io.lock import OutputLock
from cmap.tiles.cluster import connect
from cmap.tiles.grid import grid_tiles
from cmap.tiles.listing import list_tiles

DONE = "done.json"  # in a finished part: the digest of what it was cut for, and its counts


@dataclasses.dataclass(frozen=True)
class Cut:
    """What every tile is cut with (sent to the workers)."""

    source: LabelSource
    options: dict
    year: int | None
    series: str
    seed: int
    weather: tuple[str, str] | None  # path, variable
    cells: dict = dataclasses.field(default_factory=dict)  # tile -> its grid cell's options


def _open(tile: str, cut: Cut, name: str) -> CubeDataModule:
    options = cut.options | cut.cells.get(name, {}) | ({"year": cut.year} if cut.year else {})
    return CubeDataModule(tile, **options)


def _source(cut: Cut, name: str, index: int, count: int) -> LabelSource:
    """The tile's own source: `{tile}` in a label raster's path is the tile's name; random
    pixels are the tile's share of `unlabelled`."""
    changes = {"clip": True}
    if cut.source.label_raster is not None:
        changes["label_raster"] = Path(str(cut.source.label_raster).replace("{tile}", name))
    if cut.source.unlabelled is not None:  # an even share, one pixel at least
        share = cut.source.unlabelled // count + int(index < cut.source.unlabelled % count)
        changes["unlabelled"] = max(share, 1)
    return dataclasses.replace(cut.source, **changes)


def _pick(tile: str, name: str, index: int, count: int, cut: Cut):
    """The tile's cube and its pixels; ids of the tile's own pixels are prefixed by its name
    (a label raster's parcel 3 in two tiles is two parcels)."""
    data = _open(tile, cut, name)
    chosen = _source(cut, name, index, count).pick(data.cube, cut.seed + index)
    if cut.source.local_ids:
        chosen["poi_id"] = np.char.add(f"{name}:", chosen["poi_id"].astype(str))
        chosen["group"] = np.char.add(f"{name}:", chosen["group"].astype(str))
    return data, chosen


def survey(tile: str, name: str, index: int, count: int, cut: Cut) -> dict:
    """A tile's bands, season and groups (with the label of each group's first pixel and its
    pixel count), or its one-line error."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            data, chosen = _pick(tile, name, index, count, cut)
    except CmapError as err:
        return {"error": str(err)}
    groups, first, counts = np.unique(chosen["group"], return_index=True, return_counts=True)
    labels = chosen["label"]
    codes = np.unique(labels, return_counts=True) if labels is not None else None
    data.cube.close()
    return {
        "bands": list(data.bands),
        "year": data.year,
        "groups": groups.astype(str),
        "labels": None if labels is None else labels[first].astype(str),
        "pixels": counts,
        "codes": codes,
        "poi_ids": chosen["poi_id"] if cut.source.points is not None else None,
        "said": said.getvalue().strip(),
    }


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return h.hexdigest()


def cut_tile(
    tile: str, name: str, index: int, count: int, cut: Cut, owned: dict, part: str
) -> dict:
    """Write the tile's share of the splits to `part` (its groups in `owned`: group [G] and
    split [G]); a part already finished for the same digest is kept. Returns its counts."""
    part = Path(part)
    done = part / DONE
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("digest") == owned["digest"]:
            return record | {"kept": True}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return _cut(tile, name, index, count, cut, owned, part)
    except CmapError as err:  # bad data: a line, not retried
        return {"error": str(err)}


def _cut(tile: str, name: str, index: int, count: int, cut: Cut, owned: dict, part: Path):
    start = time.perf_counter()
    data, chosen = _pick(tile, name, index, count, cut)
    keep = np.isin(chosen["group"], owned["groups"])
    chosen = {k: (v[keep] if v is not None else None) for k, v in chosen.items()}
    rows = pixel_rows(data.cube, chosen)
    if cut.series != "pixel":
        chosen, rows = parcel_series(chosen, rows, cut.series.removeprefix("parcel_"))
    order = np.argsort(owned["groups"])
    split = owned["split"][order][np.searchsorted(owned["groups"][order], chosen["group"])]
    weather = Weather(*cut.weather) if cut.weather else None
    with atomic_path(part) as partial:
        partial.mkdir(parents=True)
        counts = write_splits(
            partial, data.cube, data.year, data.first_day, chosen, rows, split, weather
        )
        seconds = time.perf_counter() - start
        record = {"digest": owned["digest"], "counts": counts, "seconds": seconds}
        (partial / DONE).write_text(json.dumps(record))
    data.cube.close()
    return record


def owners(surveys: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each group once: its name, label (or None), and the tile holding most of its pixels
    (the first such tile on a tie) [G]; and how many groups lie in several tiles."""
    tile = np.concatenate([np.full(len(s["groups"]), k) for k, s in enumerate(surveys)])
    groups = np.concatenate([s["groups"] for s in surveys]).astype(str)
    pixels = np.concatenate([s["pixels"] for s in surveys])
    labelled = surveys[0]["labels"] is not None
    labels = np.concatenate([s["labels"] for s in surveys]).astype(str) if labelled else None
    order = np.lexsort((tile, -pixels, groups))
    groups, tile = groups[order], tile[order]
    first = np.r_[True, groups[1:] != groups[:-1]]
    shared = int((np.diff(np.flatnonzero(np.r_[first, True])) > 1).sum())
    chosen_labels = labels[order][first] if labelled else None
    return groups[first], chosen_labels, tile[first], shared


def _check(tiles: list[str], surveys: list[dict]) -> None:
    failed: dict[str, list[str]] = {}  # error -> tiles (one bad label file fails them all)
    for tile, s in zip(tiles, surveys):
        if "error" in s:
            failed.setdefault(s["error"], []).append(tile)
    if failed:
        count = sum(map(len, failed.values()))
        listed = "; ".join(f"{preview(t, 3)}: {e}" for e, t in list(failed.items())[:5])
        more = f" (and {len(failed) - 5} more errors)" if len(failed) > 5 else ""
        raise DataError(
            None,
            f"{count} of {len(tiles)} tiles cannot be cut: {listed}{more}; a samples "
            "folder is split over all its tiles at once, so none is written",
        )
    for tile, s in zip(tiles[1:], surveys[1:]):
        for what in ("bands", "year"):
            if s[what] != surveys[0][what]:
                raise DataError(
                    tile,
                    f"has {what} {s[what]}, tile {tiles[0]} has {surveys[0][what]}: one samples "
                    "folder holds one band set and one season",
                )


def _join(parts: list[Path], partial: Path) -> None:
    """Each split's tables of every part, one after another, in one file per table."""
    for split in SPLITS:
        (partial / split).mkdir(parents=True)
        names = sorted({p.name for part in parts for p in (part / split).glob("*.pq")})
        for table_name in names:
            writer = None
            for part in parts:
                table = pq.read_table(part / split / table_name)
                if writer is None:
                    writer = pq.ParquetWriter(partial / split / table_name, table.schema)
                writer.write_table(table.cast(writer.schema))
            writer.close()


def samples_over_tiles(
    tiles_spec: str,
    out: Path,
    cut: Cut,
    fractions: list[float],
    label_mapping: Path | None,
    mapping: dict | None,
    cluster: str = "local",
    workers: int | None = None,
    retries: int = 2,
    grid: str | None = None,
) -> dict[str, int]:
    """Cut the samples folder `out` out of every tile `tiles_spec` lists (glob, path or
    @FILE), or out of the cells of one STAC catalogue on `grid` (a size or `mgrs`, see
    `cmap.tiles.grid`); returns the number of samples per split."""
    from distributed import as_completed

    tiles = list_tiles([tiles_spec])
    if grid:
        if len(tiles) != 1:
            raise ConfigError(f"--grid tiles one STAC catalogue; {tiles_spec} lists {len(tiles)}")
        catalogue = next(iter(tiles.values()))
        cut = dataclasses.replace(cut, cells=grid_tiles(catalogue, grid, cut.options))
        tiles = dict.fromkeys(cut.cells, catalogue)
    names, paths = list(tiles), [str(p) for p in tiles.values()]
    sources = [f"{p}#{n}" for n, p in zip(names, paths)] if grid else paths
    if cut.source.label_raster is not None and len(tiles) > 1:
        if "{tile}" not in str(cut.source.label_raster):
            raise ConfigError(
                f"--label_raster {cut.source.label_raster}: with many tiles, name each tile's "
                "raster with {tile}, e.g. labels/{tile}.tif"
            )
    lock = OutputLock(out.with_name(out.name + ".lock"))
    lock.acquire()
    client = connect(cluster, workers, 1, retries, {})
    try:
        n = len(tiles)
        surveyed = client.map(
            survey, paths, names, range(n), [n] * n, cut=cut, retries=retries, pure=False
        )
        surveys = client.gather(surveyed)
        _check(paths, surveys)
        for name, s in zip(names, surveys):
            if s["said"]:
                print(f"{name}: {s['said']}")
        groups, labels, owner, shared = owners(surveys)
        if not len(groups):
            raise DataError(None, f"the {n} tiles hold no labelled pixel (see the lines above)")
        _report(cut, surveys, mapping, shared)
        split = assign_splits(groups, fractions, cut.seed, labels)
        parts = out.with_name(out.name + ".parts")
        parts.mkdir(exist_ok=True)
        futures = {}
        for k, (name, path) in enumerate(tiles.items()):
            mine = owner == k
            owned = {"groups": groups[mine], "split": split[mine]}
            owned["digest"] = _digest(path, cut, owned["groups"], owned["split"])
            task = (cut_tile, str(path), name, k, n, cut, owned, str(parts / name))
            futures[client.submit(*task, retries=retries, pure=False)] = name
        failed = _gather(futures, as_completed)
    finally:
        local = cluster == "local"
        engine = client.cluster if local else None
        client.close()
        if engine is not None:
            engine.close()
        lock.release()
    if failed:
        listed = "; ".join(f"{t}: {e}" for t, e in list(failed.items())[:5])
        raise CmapError(
            f"{len(failed)} of {len(tiles)} tiles failed: {listed}; the others' parts are kept "
            f"in {parts}, and the same command again cuts only what is missing"
        )
    counts = {s: 0 for s in SPLITS}
    for name in names:
        record = json.loads((parts / name / DONE).read_text())
        for s in SPLITS:
            counts[s] += record["counts"][s]
    first = _open(paths[0], cut, names[0])
    with atomic_path(out) as partial:
        _join([parts / name for name in names], partial)
        weather = Weather(*cut.weather) if cut.weather else None
        meta = (first.bands, first.season, sources, counts, cut.seed, cut.series)
        write_meta(partial, *meta, label_mapping, weather)
    first.cube.close()
    remove(parts)
    return counts


def _report(cut: Cut, surveys: list[dict], mapping: dict | None, shared: int) -> None:
    if shared:
        print(f"{shared} group(s) lie in several tiles: each is cut from the tile holding most")
    if cut.source.points is not None:
        inside = np.unique(np.concatenate([s["poi_ids"] for s in surveys]))
        total = count_points(Path(cut.source.points))
        if total > len(inside):
            print(f"{total - len(inside)} point(s) lie outside every tile and are not cut")
    if mapping is not None and surveys[0]["codes"] is not None:
        missing = {}
        for s in surveys:
            for code, n in zip(*s["codes"]):
                if code not in mapping:
                    missing[code] = missing.get(code, 0) + int(n)
        if missing:
            listed = ", ".join(f"{c} ({n} pixels)" for c, n in missing.items())
            print(f"{len(missing)} label(s) not in the label mapping, trained as 'other': {listed}")


def _gather(futures: dict, as_completed) -> dict[str, str]:
    """Wait for the cuts, one line each; the failed tiles' errors."""
    failed = {}
    for done, future in enumerate(as_completed(futures), 1):
        name = futures[future]
        try:
            record = future.result()
        except Exception as err:  # the last attempt's failure, or every worker lost
            record = {"error": f"{type(err).__name__}: {err}"}
        if "error" in record:
            failed[name] = record["error"]
            said = f"FAILED: {record['error']}"
        else:
            how = " (cut before)" if record.get("kept") else f" in {record['seconds']:.1f} s"
            said = ", ".join(f"{s} {record['counts'][s]}" for s in SPLITS) + how
        print(f"cmap samples: [{done}/{len(futures)}] {name}: {said}", file=sys.stderr)
    return failed
