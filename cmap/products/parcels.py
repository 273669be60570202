"""Parcel maps: a map's class probabilities gathered inside each parcel of a vector file.

Only the parcels that overlap the map are read (through the file's spatial index where it
has one) and written; those outside are counted, so one tile of a national parcel register
costs the tile's parcels.

Parcels are placed on the map's grid window by window (a pixel belongs to the parcel holding
its centre; where parcels overlap, the later one in the file), so a parcel crossing windows
gets exactly its pixels. Per parcel, the sums of the valid pixels' probabilities and their
votes (each pixel's likeliest class) are added up; the class is that of the highest mean
probability (`mean`) or of the most votes (`majority`). Progress is saved beside the output
and a stopped run continues where it was.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.features import rasterize
from rasterio.transform import array_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform

from cmap.data.labels.vectors import read_frame
from cmap.errors import ConfigError, DataError
from cmap.io.atomic import atomic_path, remove
from cmap.io.lock import OutputLock
from cmap.io.outputs import refuse_existing
from cmap.products.probabilities import blocks, classes_of, open_probabilities, read_block
from cmap.products.vectors import check_vector_output, write_frame

WINDOW = 512  # pixels a side placed and read at once
TOTALS = ("sums", "votes", "valid", "pixels")


def place(frame, crs, grid_bounds, buffer: float):
    """The parcels in a map's CRS, shrunk by `buffer`; why a parcel cannot have a class
    before any pixel is read ("" when it may); and whether it meets the map (a broken one
    does, to be written with its reason)."""
    from shapely.geometry import box  # the geo extra, as geopandas

    geometry = frame.geometry.to_crs(crs)
    broken = (geometry.isna() | geometry.is_empty | ~geometry.is_valid).to_numpy()
    meets = broken | geometry.intersects(box(*grid_bounds)).to_numpy()
    reason = np.where(broken, "empty or invalid geometry", "").astype(object)
    if buffer:
        geometry = geometry.buffer(-abs(buffer))
        reason[(reason == "") & geometry.is_empty.to_numpy()] = "emptied by the inward buffer"
    return geometry, reason, meets


def accumulate(src, geometry, usable, totals, offset: int, save) -> int:
    """Add the pixels of `src`'s windows to the parcels' totals; the windows are numbered
    from `offset` (those of the maps before), and those under `totals["done"]` are done.
    `save(last)` saves progress (every few seconds, and at the map's last window). Returns
    the number of the next map's first window."""
    from shapely.geometry import box

    k = src.count
    index = geometry.sindex
    windows = list(blocks(src.height, src.width, WINDOW))
    for number in range(max(int(totals["done"]) - offset, 0), len(windows)):
        window = windows[number]
        hits = np.sort(index.query(box(*window_bounds(window, src.transform)), "intersects"))
        hits = hits[usable[hits]]
        if len(hits):
            burned = rasterize(
                ((geometry.iloc[h], int(h) + 1) for h in hits),
                out_shape=(int(window.height), int(window.width)),
                transform=window_transform(window, src.transform),
                dtype="int64",
            )
            inside = burned > 0
            if inside.any():
                p, missing = read_block(src, window)  # [K, h, w], [h, w]
                owner = burned[inside] - 1
                np.add.at(totals["pixels"], owner, 1)
                good = ~missing[inside]
                owners, local = np.unique(owner[good], return_inverse=True)
                values = p[:, inside][:, good]  # [K, n]
                n = len(owners)
                totals["valid"][owners] += np.bincount(local, minlength=n)
                for c in range(k):
                    totals["sums"][owners, c] += np.bincount(local, values[c], minlength=n)
                votes = np.bincount(local * k + values.argmax(axis=0), minlength=n * k)
                totals["votes"][owners] += votes.reshape(n, k)
        totals["done"] = offset + number + 1
        save(number + 1 == len(windows))
    return offset + len(windows)


def saver(path: Path, totals: dict, settings: dict, every: float):
    """`save(last)`: write the totals to `path` when `every` seconds have passed, or `last`."""
    saved = [time.monotonic()]

    def save(last: bool) -> None:
        if last or time.monotonic() - saved[0] >= every:
            with atomic_path(path) as partial, open(partial, "wb") as handle:
                np.savez(handle, settings=json.dumps(settings), **totals)
            saved[0] = time.monotonic()

    return save


def load(path: Path, settings: dict, parcels: int, k: int) -> dict:
    """Totals saved by an earlier run with the same settings, else zeros."""
    fresh = {"sums": np.zeros((parcels, k)), "votes": np.zeros((parcels, k), np.int64)}
    fresh |= {"valid": np.zeros(parcels, np.int64), "pixels": np.zeros(parcels, np.int64)}
    fresh["done"] = 0
    if not path.exists():
        return fresh
    try:
        with np.load(path) as saved:
            same = json.loads(str(saved["settings"])) == settings
            totals = {name: saved[name] for name in (*TOTALS, "done")} if same else None
    except (OSError, ValueError, KeyError):  # unreadable: a run killed while saving
        totals = None
    if totals is None:
        print(f"cmap: {path.name} was left by a run with other inputs or settings; starting afresh")
        return fresh
    print(f"cmap: continuing {path.name}: {int(totals['done'])} windows done")
    return totals


def parcel_table(frame, totals: dict, reason, classes, method: str, min_pixels: int):
    """The parcels with their class, its probability (mean probability, or share of votes
    with `majority`), the margin to the second class, pixel counts, the mean probability of
    every class (`p_<class>`) and, for a parcel without a class, why."""
    valid = totals["valid"]
    mean = totals["sums"] / np.maximum(valid, 1)[:, None]  # [P, K]
    score = mean if method == "mean" else totals["votes"] / np.maximum(valid, 1)[:, None]
    top = np.sort(score, axis=1)
    reason = reason.copy()
    empty = (reason == "") & (totals["pixels"] == 0)
    reason[empty] = "no pixel centre inside"
    few = (reason == "") & (valid < min_pixels)
    reason[few] = [f"{v} valid pixel(s), under min_pixels {min_pixels}" for v in valid[few]]
    has = reason == ""
    names = np.array(classes, dtype=object)
    columns = {
        "class": np.where(has, names[score.argmax(axis=1)], None),
        "probability": np.where(has, top[:, -1], np.nan),
        "margin": np.where(has, top[:, -1] - top[:, -2], np.nan),
        "valid_pixels": valid,
        "pixels": totals["pixels"],
        "reason": np.where(has, None, reason),
    } | {f"p_{name}": np.where(has, mean[:, c], np.nan) for c, name in enumerate(classes)}
    out = frame.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def as_paths(probabilities: Path | list[Path]) -> list[Path]:
    """One probabilities map or several, as a list of paths."""
    if isinstance(probabilities, (str, Path)):
        return [Path(probabilities)]
    return [Path(p) for p in probabilities]


def parcel_map(
    probabilities: Path | list[Path],
    parcels: Path,
    output: Path,
    id_column: str | None = None,
    method: Literal["mean", "majority"] = "mean",
    buffer: float = 0.0,
    min_pixels: int = 1,
    overwrite: bool = False,
    save_every: float = 10.0,
) -> dict[str, int]:
    """Write the parcel map of one probabilities map or several (tiles: their pixels add up,
    so a parcel across two tiles gets both parts); returns how many parcels got a class, how
    many did not, and how many lie outside the maps (not written)."""
    maps = as_paths(probabilities)
    if min_pixels < 1:
        raise ConfigError(f"min_pixels must be at least 1, got {min_pixels}")
    if not maps:
        raise ConfigError("give at least one probabilities map")
    check_vector_output(output)
    progress = output.with_name(output.name + ".progress.npz")
    if not progress.exists():
        refuse_existing(output, overwrite=overwrite)
    lock = OutputLock(output.with_name(output.name + ".lock"))
    lock.acquire()
    try:
        with ExitStack() as stack:
            sources = [stack.enter_context(open_probabilities(m)) for m in maps]
            classes = classes_of(sources[0])
            for path, src in zip(maps[1:], sources[1:]):
                if classes_of(src) != classes:
                    raise DataError(
                        path,
                        f"has the classes {classes_of(src)}, {maps[0].name} "
                        f"{classes}: maps of one model are needed",
                    )
            grids = [(array_bounds(s.height, s.width, s.transform), s.crs) for s in sources]
            frame, unread = read_frame(parcels, None, id_column, within=grids)
            if id_column is not None and frame[id_column].duplicated().any():
                raise DataError(
                    parcels, f"{id_column} repeats: each parcel needs its own identifier"
                )
            ours = ["class", "probability", "margin", "valid_pixels", "pixels", "reason"]
            clash = [c for c in ours + [f"p_{c}" for c in classes] if c in frame.columns]
            if clash:
                raise DataError(
                    parcels,
                    f"has a column {clash[0]!r}, which cmap parcels writes: rename it first",
                )
            placed = [place(frame, crs, bounds, buffer) for bounds, crs in grids]
            inside = np.logical_or.reduce([meets for _, _, meets in placed])  # any map
            frame = frame[inside].reset_index(drop=True)  # the file's own columns only
            reason = placed[0][1][inside]
            if (reason != "empty or invalid geometry").sum() == 0:
                where = "; ".join(
                    f"{tuple(round(b) for b in bounds)} in {crs}" for bounds, crs in grids
                )
                names = ", ".join(map(str, maps))
                raise DataError(
                    parcels,
                    f"no parcel overlaps the map(s) {names} (bounds {where}): wrong file or CRS?",
                )
            files = [
                (Path(f).name, Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
                for f in (*maps, parcels)
            ]
            settings = {"files": files, "buffer": buffer, "window": WINDOW}
            settings = json.loads(json.dumps(settings))  # as saved: lists, not tuples
            if overwrite:
                remove(progress)
            totals = load(progress, settings, len(frame), len(classes))
            save = saver(progress, totals, settings, save_every)
            offset = 0
            for src, (geometry, _, _) in zip(sources, placed):
                offset = accumulate(src, geometry[inside], reason == "", totals, offset, save)
        table = parcel_table(frame, totals, reason, classes, method, min_pixels)
        write_frame(table, output)
        remove(progress)
    finally:
        lock.release()
    labelled = int(table["class"].notna().sum())
    under = r"^\d+ valid pixel\(s\), under min_pixels (\d+)$"
    reasons = table["reason"].dropna().str.replace(under, r"under \1 valid pixels", regex=True)
    outside = unread["outside"] + int((~inside).sum())
    empty = {"without geometry (not written)": unread["empty"]} if unread["empty"] else {}
    return (
        {"with a class": labelled}
        | {f"without ({why})": int(n) for why, n in reasons.value_counts().items()}
        | empty
        | ({"outside the map (not written)": outside} if outside else {})
    )
