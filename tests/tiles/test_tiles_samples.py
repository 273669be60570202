"""`cmap samples TILES OUT --tiles true`: one samples folder out of many tiles on a Dask
cluster: the same folder as `cmap samples` of the whole mosaic, parcels across tile borders
cut once, a failed tile reported and finished by a re-run."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import yaml

from cmap.commands import samples
from cmap.data.demo.tiles import write_tiles
from cmap.data.labels.sources import LabelSource
from cmap.errors import ConfigError, DataError
from cmap.tiles.samples import Cut, _check, _source, owners
from tests.helpers import DEMO_CUBE, garble_block

SPLITS = ("train", "val", "test")


def survey(groups, pixels, labels=None, bands=("B04",), year=2021):
    return {
        "bands": list(bands),
        "year": year,
        "groups": np.array(groups),
        "pixels": np.array(pixels),
        "labels": None if labels is None else np.array(labels),
    }


def test_each_group_goes_to_the_tile_holding_most_of_it_the_first_on_a_tie():
    surveys = [
        survey(["a", "b", "c"], [5, 2, 3], ["x", "y", "z"]),
        survey(["b", "c", "d"], [7, 3, 1], ["y", "z", "x"]),
    ]
    groups, labels, tile, shared = owners(surveys)
    assert groups.tolist() == ["a", "b", "c", "d"]
    assert tile.tolist() == [0, 1, 0, 1]  # b: 7 pixels beat 2; c: a tie, the first tile
    assert labels.tolist() == ["x", "y", "z", "x"] and shared == 2
    assert owners([survey(["r1"], [4])])[1] is None  # random pixels: no labels


def test_tiles_of_other_bands_or_seasons_or_that_do_not_open_refuse_the_cut():
    first = survey(["a"], [1], bands=("B04", "B08"))
    with pytest.raises(DataError, match=r"t2: has bands \['B04'\], tile t1 has \['B04', 'B08'\]"):
        _check(["t1", "t2"], [first, survey(["b"], [1])])
    with pytest.raises(DataError, match="t2: has year 2020, tile t1 has 2021"):
        _check(["t1", "t2"], [first, survey(["b"], [1], bands=("B04", "B08"), year=2020)])
    with pytest.raises(DataError, match="1 of 2 tiles cannot be cut: t2: bad file; a samples"):
        _check(["t1", "t2"], [first, {"error": "bad file"}])
    same = {"error": "labels.gpkg: has no column 'label'"}
    with pytest.raises(DataError, match="3 of 4 tiles cannot be cut: t2, t3, t4: labels.gpkg: has"):
        _check(["t1", "t2", "t3", "t4"], [first, same, same, same])


def test_each_tile_gets_its_label_raster_and_its_share_of_random_pixels():
    raster = Cut(LabelSource(label_raster=Path("labels/{tile}.tif")), {}, None, "pixel", 0, None)
    mine = _source(raster, "T01", 1, 4)
    assert mine.label_raster == Path("labels/T01.tif") and mine.clip
    random = Cut(LabelSource(unlabelled=10), {}, None, "pixel", 0, None)
    assert [_source(random, "T", k, 4).unlabelled for k in range(4)] == [3, 3, 2, 2]
    assert (
        _source(Cut(LabelSource(unlabelled=2), {}, None, "pixel", 0, None), "T", 3, 4).unlabelled
        == 1
    )


def test_one_label_raster_for_many_tiles_is_refused_in_one_line(tmp_path):
    write_tiles(DEMO_CUBE, tmp_path / "tiles", grid=2)
    raster = tmp_path / "labels.tif"
    raster.write_bytes(b"")
    with pytest.raises(
        ConfigError, match=r"with many tiles, name each tile's raster with \{tile\}"
    ):
        samples(str(tmp_path / "tiles" / "T*"), tmp_path / "out", label_raster=raster, tiles=True)
    assert not (tmp_path / "out").exists()


def mosaic(tiles: Path, out: Path) -> rasterio.Affine:
    """The 2 x 2 tiles of `write_tiles` as one cube (they lie side by side on one grid)."""
    out.mkdir()
    for date in sorted((tiles / "T00").glob("*.tif")):
        rows = []
        for r in range(2):
            blocks = []
            for c in range(2):
                with rasterio.open(tiles / f"T{r}{c}" / date.name) as src:
                    blocks.append(src.read())
                    profile, names = src.profile, src.descriptions
                    if (r, c) == (0, 0):
                        origin = src.transform
            rows.append(np.concatenate(blocks, 2))
        data = np.concatenate(rows, 1)
        profile |= {"width": data.shape[2], "height": data.shape[1], "transform": origin}
        with rasterio.open(out / date.name, "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = names
    shutil.copy(tiles / "T00" / "meta.yaml", out / "meta.yaml")
    return origin


def write_points(path: Path, origin, side: int, count: int) -> None:
    """Random pixels of the mosaic, in fields of 8 x 8 pixels (none across a tile border)."""
    rng = np.random.default_rng(0)
    rows, cols = np.divmod(rng.choice(side * side, count, replace=False), side)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["poi_id", "x", "y", "label", "field_id"])
        for k, (r, c) in enumerate(zip(rows, cols)):
            x, y = origin * (c + 0.5, r + 0.5)
            out.writerow([f"p{k}", x, y, "abc"[(r // 8 + c // 8) % 3], f"{r // 8}_{c // 8}"])


def tables(folder: Path) -> dict:
    found = {}
    for split in SPLITS:
        for name in ("features", "labels"):
            keys = [("poi_id", "ascending")] + [("date", "ascending")] * (name == "features")
            found[split, name] = pq.read_table(folder / split / f"{name}.pq").sort_by(keys)
    return found


@pytest.mark.slow
def test_the_tiles_give_the_samples_of_the_whole_mosaic(tmp_path, run_cmap):
    write_tiles(DEMO_CUBE, tmp_path / "tiles", grid=2)
    origin = mosaic(tmp_path / "tiles", tmp_path / "whole")
    write_points(tmp_path / "points.csv", origin, 80, 400)
    with open(tmp_path / "points.csv", "a") as f:
        f.write(f"far,{origin.c - 5000},{origin.f},a,far\n")  # off every tile
    whole = run_cmap("samples", "whole", "s_whole", "--points", "points.csv", cwd=tmp_path)
    assert whole.returncode == 2 and "1 point(s) outside the cube, e.g. far" in whole.stderr
    lines = (tmp_path / "points.csv").read_text().splitlines()
    (tmp_path / "inside.csv").write_text("\n".join(lines[:-1]) + "\n")
    whole = run_cmap("samples", "whole", "s_whole", "--points", "inside.csv", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    args = ["samples", "tiles/T*", "s_tiles", "--points", "points.csv", "--tiles", "true"]
    done = run_cmap(*args, "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 point(s) lie outside every tile and are not cut" in done.stdout
    assert done.stderr.count("cmap samples: [") == 4
    assert done.stdout.strip().splitlines()[-1] == whole.stdout.strip().splitlines()[-1].replace(
        "s_whole", "s_tiles"
    )
    mine, theirs = tables(tmp_path / "s_tiles"), tables(tmp_path / "s_whole")
    for key, table in theirs.items():
        assert mine[key].equals(table), key
    meta = yaml.safe_load((tmp_path / "s_tiles" / "meta.yaml").read_text())
    assert meta["source_cube"] == [
        str(tmp_path / "tiles" / f"T{k}") for k in ("00", "01", "10", "11")
    ]
    left = sorted(p.name for p in tmp_path.iterdir())  # no parts, no lock
    assert left == ["inside.csv", "points.csv", "s_tiles", "s_whole", "tiles", "whole"]


def write_parcels(path: Path, origin) -> None:
    """8 x 8 square parcels of 9 x 9 pixels, offset so that some lie across tile borders."""
    import geopandas as gpd
    from shapely.geometry import box

    shapes, crops, ids = [], [], []
    for i in range(8):
        for j in range(8):
            x0, y0 = origin * (j * 10 + 3, i * 10 + 3)
            x1, y1 = origin * (j * 10 + 12, i * 10 + 12)
            shapes.append(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
            crops.append("abc"[(i + j) % 3])
            ids.append(f"P{i}{j}")
    frame = gpd.GeoDataFrame({"crop": crops, "pid": ids}, geometry=shapes, crs="EPSG:32631")
    frame.to_file(path)


@pytest.mark.slow
def test_parcels_across_tiles_are_cut_once_and_a_failed_tile_is_finished_by_a_rerun(
    tmp_path, run_cmap
):
    pytest.importorskip("geopandas")
    write_tiles(DEMO_CUBE, tmp_path / "tiles", grid=2)
    origin = mosaic(tmp_path / "tiles", tmp_path / "whole")
    with rasterio.open(tmp_path / "whole" / "2020-11-04.tif") as src:
        assert src.crs == "EPSG:32631"
    write_parcels(tmp_path / "parcels.gpkg", origin)
    vector = ["--vector", "parcels.gpkg", "--label_column", "crop", "--id_column", "pid"]
    garbled = sorted((tmp_path / "tiles" / "T11").glob("*.tif"))[10]
    good = garbled.read_bytes()
    garble_block(garbled)  # T11 opens (the survey passes), its pixels do not read
    args = ["samples", "tiles/T*", "parcels", *vector, "--tiles", "true", "--workers", "2"]
    failed = run_cmap(*args, "--retries", "0", cwd=tmp_path)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("cmap: error: 1 of 4 tiles failed: T11: ") and str(garbled) in last
    parts = tmp_path / "parcels.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["T00", "T01", "T10"]
    assert not (tmp_path / "parcels").exists()
    garbled.write_bytes(good)
    again = run_cmap(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("(cut before)") == 3 and not parts.exists()
    assert "group(s) lie in several tiles: each is cut from the tile holding most" in again.stdout
    labels = {s: pq.read_table(tmp_path / "parcels" / s / "labels.pq") for s in SPLITS}
    features = {s: pq.read_table(tmp_path / "parcels" / s / "features.pq") for s in SPLITS}
    parcel_of = {s: {p.split("_r")[0] for p in labels[s]["poi_id"].to_pylist()} for s in SPLITS}
    assert sum(map(len, parcel_of.values())) == 64  # every parcel, in one split only
    assert set.union(*parcel_of.values()) == {f"P{i}{j}" for i in range(8) for j in range(8)}
    for s in SPLITS:
        ids = labels[s]["poi_id"].to_pylist()
        assert len(ids) == len(set(ids))  # no pixel twice
        assert set(features[s]["poi_id"].to_pylist()) <= set(ids)
    total = sum(labels[s].num_rows for s in SPLITS)
    whole = run_cmap("samples", "whole", "whole_parcels", *vector, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert total < sum(
        pq.read_table(tmp_path / "whole_parcels" / s / "labels.pq").num_rows for s in SPLITS
    )  # a parcel across a border keeps the pixels of the tile holding most of it
    per_parcel = [*args[:2], "parcel_series", *args[3:], "--series", "parcel_mean"]
    series = run_cmap(*per_parcel, cwd=tmp_path)
    assert series.returncode == 0, series.stderr[-3000:]
    meta = yaml.safe_load((tmp_path / "parcel_series" / "meta.yaml").read_text())
    assert sum(meta["samples_per_split"].values()) == 64 and meta["series"] == "parcel_mean"
