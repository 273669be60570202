"""Parcel maps (`cmap parcels`): each parcel's pixels gathered exactly, whatever the windows,
a stopped run continued, and parcels that cannot have a class saying why."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import rowcol

from cmap.data.labels.sources import parcel_ids
from cmap.main import main
from cmap.products import parcels as parcel_module
from tests.products.conftest import CLASSES, DEMO

geopandas = pytest.importorskip("geopandas")


def expected(p, missing, truth, frame):
    """Each parcel's valid-pixel count and mean probabilities, from the truth's fields."""
    fields = parcel_ids(truth, truth != 255)
    with rasterio.open(DEMO / "cube_truth.tif") as src:
        inside = frame.to_crs(src.crs).geometry.representative_point()
        rows, cols = rowcol(src.transform, inside.x, inside.y)
    counts, means = [], []
    for r, c in zip(rows, cols):
        own = (fields == fields[r, c]) & ~missing
        counts.append(own.sum())
        means.append(p[:, own].mean(axis=1))
    return np.array(counts), np.array(means)


def test_parcels_get_their_pixels_mean_probabilities(demo_probabilities, tmp_path, capsys):
    path, p, missing, truth = demo_probabilities
    main(["parcels", str(path), str(DEMO / "cube_parcels.geojson"), "--id_column", "parcel_id"])
    assert "parcels: 12 with a class" in capsys.readouterr().out
    table = geopandas.read_file(tmp_path / "m_parcels.gpkg")
    counts, means = expected(p, missing, truth, table)
    assert table["valid_pixels"].tolist() == counts.tolist()
    assert table["pixels"].sum() == (truth != 255).sum()
    mean = table[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(mean, means, atol=1e-6)
    assert table["class"].tolist() == [CLASSES[k] for k in means.argmax(axis=1)]
    top = np.sort(means, axis=1)
    assert np.allclose(table["margin"], top[:, -1] - top[:, -2], atol=1e-6)
    assert table.crs == "EPSG:4326" and table["crop"].notna().all()  # the parcels' own


def test_windows_do_not_change_the_result_and_a_stopped_run_continues(
    demo_probabilities, tmp_path, monkeypatch, capsys
):
    path, *_ = demo_probabilities
    parcels = str(DEMO / "cube_parcels.geojson")
    main(["parcels", str(path), parcels, "--output", str(tmp_path / "whole.gpkg")])
    whole = geopandas.read_file(tmp_path / "whole.gpkg")
    monkeypatch.setattr(parcel_module, "WINDOW", 7)  # 36 windows; parcels cross many
    real, calls = parcel_module.read_block, []

    def dies(*args):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt  # a kill in the middle
        return real(*args)

    monkeypatch.setattr(parcel_module, "read_block", dies)
    out = tmp_path / "tiled.gpkg"
    with pytest.raises(KeyboardInterrupt):
        parcel_module.parcel_map(path, DEMO / "cube_parcels.geojson", out, save_every=0)
    assert not out.exists() and out.with_name("tiled.gpkg.progress.npz").exists()
    main(["parcels", str(path), parcels, "--output", str(out)])
    assert "continuing tiled.gpkg.progress.npz" in capsys.readouterr().out
    tiled = geopandas.read_file(out)
    assert not out.with_name("tiled.gpkg.progress.npz").exists()
    assert tiled["valid_pixels"].tolist() == whole["valid_pixels"].tolist()
    assert tiled["class"].tolist() == whole["class"].tolist()
    assert np.allclose(tiled["probability"], whole["probability"], atol=1e-9)


def test_parcels_without_a_class_say_why(demo_probabilities, tmp_path, capsys):
    path, *_ = demo_probabilities
    frame = geopandas.read_file(DEMO / "cube_parcels.geojson")
    from shapely.geometry import box

    extra = geopandas.GeoDataFrame(
        {"parcel_id": ["away", "tiny"], "crop": ["x", "y"]},
        geometry=[
            box(300_000, 4_700_000, 300_100, 4_700_100),  # far from the map
            box(370_099, 4_829_799, 370_101, 4_829_801),
        ],  # around a pixel corner
        crs="EPSG:32631",
    ).to_crs(frame.crs)
    parcels = tmp_path / "parcels.gpkg"
    geopandas.pd.concat([frame, extra]).to_file(parcels)
    main(["parcels", str(path), str(parcels), "--min_pixels", "30", "--method", "majority"])
    table = geopandas.read_file(tmp_path / "m_parcels.gpkg").set_index("parcel_id")
    assert "away" not in table.index and len(table) == 13  # counted, not written
    assert table.loc["tiny", "reason"] == "no pixel centre inside"
    assert table.loc["field000", "reason"] == "21 valid pixel(s), under min_pixels 30"
    assert table["class"].isna().sum() == 2 and table.loc["field001", "probability"] < 1
    said = capsys.readouterr().out
    assert "parcels: 11 with a class" in said and "1 outside the map (not written)" in said
    away = tmp_path / "away.gpkg"
    extra.iloc[:1].to_file(away)
    with pytest.raises(SystemExit):
        main(["parcels", str(path), str(away), "--overwrite", "true"])
    assert "away.gpkg: no parcel overlaps the map" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["parcels", str(DEMO / "cube_truth.tif"), str(parcels)])
    assert "cube_truth.tif: is not a probabilities file" in capsys.readouterr().err


def tile(path, out, cols: slice):
    """The columns `cols` of a probabilities map as a map of its own (a tile)."""
    with rasterio.open(path) as src:
        window = rasterio.windows.Window(cols.start, 0, cols.stop - cols.start, src.height)
        profile = src.profile | {
            "width": window.width, "transform": src.window_transform(window)
        }  # fmt: skip
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.update_tags(**src.tags())
            dst.descriptions = src.descriptions
    return out


def test_tiles_of_a_map_give_the_parcels_of_the_whole_map(
    demo_probabilities, tmp_path, monkeypatch, capsys
):
    """A map cut in two tiles: every parcel, those across the cut included, gets the pixels
    and mean probabilities it gets from the whole map, also after a kill in the second tile;
    overlapping tiles count their shared pixels once per tile."""
    path, *_ = demo_probabilities
    parcels = str(DEMO / "cube_parcels.geojson")
    main(["parcels", str(path), parcels, "--output", str(tmp_path / "whole.gpkg")])
    whole = geopandas.read_file(tmp_path / "whole.gpkg")
    left = tile(path, tmp_path / "l.tif", slice(0, 17))
    right = tile(path, tmp_path / "r.tif", slice(17, 40))
    monkeypatch.setattr(parcel_module, "WINDOW", 7)  # 18 windows in the left tile
    real, calls = parcel_module.read_block, []

    def dies(src, window):
        calls.append(src.name)
        if calls.count(str(right)) == 3:
            raise KeyboardInterrupt  # a kill in the right tile
        return real(src, window)

    monkeypatch.setattr(parcel_module, "read_block", dies)
    out = tmp_path / "tiles.gpkg"
    with pytest.raises(KeyboardInterrupt):
        parcel_module.parcel_map([left, right], DEMO / "cube_parcels.geojson", out, save_every=0)
    with np.load(out.with_name("tiles.gpkg.progress.npz")) as saved:
        assert 18 < int(saved["done"]) < 18 + 24  # stopped inside the right tile (6 x 4)
    main(["parcels", f"[{left}, {right}]", parcels, "--output", str(out)])
    assert "continuing tiles.gpkg.progress.npz" in capsys.readouterr().out
    tiles = geopandas.read_file(out)
    assert tiles["valid_pixels"].tolist() == whole["valid_pixels"].tolist()
    assert tiles["class"].tolist() == whole["class"].tolist()
    mean = [f"p_{c}" for c in CLASSES]
    assert np.allclose(tiles[mean].to_numpy(), whole[mean].to_numpy(), atol=1e-9)
    main(["parcels", str(left), parcels, "--output", str(tmp_path / "left.gpkg")])
    part = geopandas.read_file(tmp_path / "left.gpkg").set_index("parcel_id")
    named = whole.set_index("parcel_id")["valid_pixels"]
    assert 0 < len(part) < len(whole)  # the parcels off the left tile are not written
    across = part["valid_pixels"] < named[part.index]  # the left tile holds part of them
    assert across.sum() >= 1 and (part["valid_pixels"][across] > 0).all()
    shifted = tile(path, tmp_path / "r2.tif", slice(12, 40))  # 5 columns shared with `left`
    main(["parcels", f"[{left}, {shifted}]", parcels, "--output", str(tmp_path / "o.gpkg")])
    overlap = geopandas.read_file(tmp_path / "o.gpkg")
    assert (overlap["pixels"] >= whole["pixels"]).all()
    assert overlap["pixels"].sum() > whole["pixels"].sum()
    assert np.allclose(overlap[mean].to_numpy(), whole[mean].to_numpy(), atol=0.05)
