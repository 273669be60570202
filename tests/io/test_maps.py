"""Finished maps rewritten as Cloud Optimized GeoTIFFs: overviews by mode for classes and by
average for probabilities, everything else kept."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

from cmap.io.maps import NODATA, class_tags, cloud_optimize, colour_table, map_profile

GRID = {"width": 600, "height": 520, "crs": "EPSG:32631",
        "transform": from_origin(500_000, 4_800_000, 10, 10)}  # fmt: skip


def test_a_class_map_gets_mode_overviews_and_keeps_its_colours_and_tags(tmp_path):
    classes = np.zeros((520, 600), np.uint8)
    classes[:, 300:] = 2
    classes[0::2, 0:300:2] = 1  # a quarter of the left half: the mode stays 0
    classes[:40] = NODATA
    path = tmp_path / "map.tif"
    with rasterio.open(path, "w", **map_profile(GRID, 1, "uint8", NODATA)) as dst:
        dst.write(classes, 1)
        dst.write_colormap(1, colour_table(["a", "b", "c"]))
        dst.update_tags(**class_tags(["a", "b", "c"]), SEASON="2021")
        dst.set_band_description(1, "class")
    cloud_optimize(path, "mode")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]  # no partial left
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) == [2, 4] and src.block_shapes == [(256, 256)]
        assert np.array_equal(src.read(1), classes) and src.nodata == NODATA
        assert src.tags()["CLASS_1"] == "b" and src.tags()["SEASON"] == "2021"
        assert src.colormap(1)[2] == colour_table(["a", "b", "c"])[2]
        assert src.descriptions == ("class",)
        half = src.read(1, out_shape=(260, 300))  # from the overview
    assert set(np.unique(half[20:, :150])) == {0} and set(np.unique(half[20:, 150:])) == {2}
    assert (half[:20] == NODATA).all()


def test_probabilities_get_average_overviews_and_keep_their_mask(tmp_path):
    p = np.zeros((2, 520, 600), np.uint8)
    p[0, :, 0::2], p[0, :, 1::2] = 200, 100  # columns alternate: the average is 150
    p[1] = 255 - p[0]
    mask = np.full((520, 600), 255, np.uint8)
    mask[:, :100] = 0
    path = tmp_path / "probabilities.tif"
    with rasterio.open(path, "w", **map_profile(GRID, 2, "uint8", None)) as dst:
        dst.write(p)
        dst.write_mask(mask)
        dst.descriptions = ("a", "b")
    cloud_optimize(path, "average")
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4] and src.descriptions == ("a", "b")
        assert np.array_equal(src.read(), p) and np.array_equal(src.read_masks(1), mask)
        half = src.read(1, out_shape=(260, 300))
        half_mask = src.read_masks(1, out_shape=(260, 300))
    assert np.abs(half[:, 60:].astype(int) - 150).max() <= 1
    assert (half_mask[:, :50] == 0).all() and (half_mask[:, 50:] == 255).all()
