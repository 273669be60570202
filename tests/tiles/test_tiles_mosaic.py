"""Mosaics of tiles' maps: one VRT per CRS that reads back as the tiles, or one line."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from cmap.errors import DataError
from cmap.io.maps import NODATA, class_tags, colour_table, map_profile
from cmap.tiles.mosaic import mosaics, write_vrt
from tests.helpers import write_probabilities

CLASSES = ["other", "ble_tendre", "mais"]


def class_map(path, values, left=500_000.0, top=4_800_000.0, res=10.0, crs="EPSG:32631"):
    h, w = values.shape
    grid = {"crs": crs, "transform": from_origin(left, top, res, res), "width": w, "height": h}
    with rasterio.open(path, "w", **map_profile(grid, 1, "uint8", NODATA)) as dst:
        dst.write(values, 1)
        dst.write_colormap(1, colour_table(CLASSES))
        dst.update_tags(**class_tags(CLASSES), SOURCE=str(path), MODEL="last.ckpt")
    return path


def test_tiles_side_by_side_read_back_through_the_mosaic(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, (4, 6), dtype=np.uint8)
    b = rng.integers(0, 3, (4, 6), dtype=np.uint8)
    b[0, 0] = NODATA
    class_map(tmp_path / "a.tif", a)
    class_map(tmp_path / "b.tif", b, left=500_060.0, top=4_799_960.0)  # right of a, 4 rows down
    [vrt] = mosaics([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path, probabilities=False)
    assert vrt == tmp_path / "mosaic.vrt"
    with rasterio.open(vrt) as src:
        assert (src.width, src.height, src.crs.to_epsg(), src.nodata) == (12, 8, 32631, NODATA)
        assert src.transform == from_origin(500_000.0, 4_800_000.0, 10, 10)
        mosaic = src.read(1)
        tags = src.tags()
        assert src.colormap(1)[2] == colour_table(CLASSES)[2]
    assert np.array_equal(mosaic[:4, :6], a) and np.array_equal(mosaic[4:, 6:], b)
    assert (mosaic[4:, :6] == NODATA).all() and (mosaic[:4, 6:] == NODATA).all()
    assert tags["CLASS_NAMES"] == ",".join(CLASSES) and tags["TILES"] == "a.tif,b.tif"
    assert "SOURCE" not in tags and "MODEL" not in tags  # one tile's, not the mosaic's


def test_tiles_of_two_crs_give_one_mosaic_each_and_probabilities_keep_their_mask(tmp_path):
    maps = []
    for name, crs in (("a", "EPSG:32631"), ("b", "EPSG:32632")):
        maps.append(class_map(tmp_path / f"{name}.tif", np.zeros((3, 3), np.uint8), crs=crs))
        p = np.full((3, 3, 3), 1 / 3, np.float32)
        missing = np.zeros((3, 3), bool)
        missing[1, 1] = True
        write_probabilities(tmp_path / f"{name}_probabilities.tif", p, missing, CLASSES)
        with rasterio.open(tmp_path / f"{name}_probabilities.tif", "r+") as dst:
            dst.crs = crs
    written = mosaics(maps, tmp_path, probabilities=True)
    assert [p.name for p in written] == [
        "mosaic_EPSG_32631.vrt",
        "mosaic_EPSG_32631_probabilities.vrt",
        "mosaic_EPSG_32632.vrt",
        "mosaic_EPSG_32632_probabilities.vrt",
    ]
    with rasterio.open(tmp_path / "mosaic_EPSG_32632_probabilities.vrt") as src:
        assert src.crs.to_epsg() == 32632 and src.descriptions == tuple(CLASSES)
        masks = src.read_masks(1)
    assert masks[1, 1] == 0 and (np.delete(masks.ravel(), 4) == 255).all()


def test_tiles_off_one_grid_or_of_other_pixel_sizes_are_refused(tmp_path):
    class_map(tmp_path / "a.tif", np.zeros((3, 3), np.uint8))
    class_map(tmp_path / "b.tif", np.zeros((3, 3), np.uint8), left=500_035.0)
    with pytest.raises(DataError, match=r"b.tif: lies off the pixel grid"):
        write_vrt([tmp_path / "a.tif", tmp_path / "b.tif"], tmp_path / "m.vrt")
    class_map(tmp_path / "c.tif", np.zeros((3, 3), np.uint8), res=20.0)
    with pytest.raises(DataError, match=r"c.tif: has pixels of 20 x 20, other tiles"):
        write_vrt([tmp_path / "a.tif", tmp_path / "c.tif"], tmp_path / "m.vrt")
    assert not (tmp_path / "m.vrt").exists()
