"""Map products on a real patch (../shared/data/worldcereal_flanders): its crop-type raster
(NetCDF, codes) as the reference, its 4-connected label patches as parcels, and a map whose
probabilities favour the true class at every labelled pixel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.features import shapes

from cmap.data.labels.sources import parcel_ids
from cmap.data.layers import read_static
from cmap.data.mapping import read_mapping
from cmap.main import main
from cmap.products.probabilities import map_output
from tests.helpers import REPO, SHARED, write_probabilities

PATCH = SHARED / "worldcereal_flanders" / "00002806639B424A"
LABELS = REPO / "configs" / "flanders" / "labels.yaml"
pytestmark = pytest.mark.skipif(not PATCH.is_dir(), reason="needs ../shared/data")


def test_a_parcel_map_and_an_assessment_of_a_real_patch(tmp_path, capsys):
    geopandas = pytest.importorskip("geopandas")
    from shapely.geometry import shape

    raster = next(PATCH.glob("OUTPUT_POLY*.nc"))
    codes, nodata, grid = read_static(raster, "CT")
    mapping = read_mapping(LABELS)
    classes = sorted(set(mapping.values())) + ["other"]
    keep = codes != nodata
    truth = np.array([classes.index(mapping.get(str(c), "other")) for c in codes.ravel()])
    truth = truth.reshape(codes.shape)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(classes)), size=codes.shape).transpose(2, 0, 1) * 0.4
    p += 0.6 * (truth[None] == np.arange(len(classes))[:, None, None])
    path = write_probabilities(tmp_path / "m_probabilities.tif", p, ~keep, classes, "float32")
    with rasterio.open(path, "r+") as dst:
        dst.crs, dst.transform = grid.crs, grid.transform
    with rasterio.open(path) as src, map_output(src, tmp_path / "m.tif", None, {}) as write:
        write(p, ~keep, rasterio.windows.Window(0, 0, src.width, src.height))
    patches = parcel_ids(codes, keep)
    rows = [(shape(g), int(v)) for g, v in shapes(patches, keep, 4, grid.transform)]
    crop = {v: classes[truth[patches == v][0]] for _, v in rows}
    parcels = geopandas.GeoDataFrame(
        {"parcel_id": [v for _, v in rows], "crop": [crop[v] for _, v in rows]},
        geometry=[g for g, _ in rows], crs=grid.crs,
    ).to_crs("EPSG:4326")  # fmt: skip
    parcels.to_file(tmp_path / "parcels.gpkg")
    main(["parcels", str(path), str(tmp_path / "parcels.gpkg"), "--id_column", "parcel_id"])
    table = geopandas.read_file(tmp_path / "m_parcels.gpkg")
    assert len(table) == 19 and (table["class"] == table["crop"]).all()
    assert table["valid_pixels"].sum() == keep.sum() == 2236
    capsys.readouterr()
    main(["assess", str(tmp_path / "m.tif"), str(raster), "--label_band", "CT",
          "--label_mapping", str(LABELS)])  # fmt: skip
    result = json.loads((tmp_path / "m_assessment.json").read_text())
    assert result["samples"] == 2236 and result["overall_accuracy"] == 1.0
    assert result["area_unit"] == "ha" and np.isclose(result["pixel_area"], 0.01)
    for row in result["classes"]:
        assert np.isclose(
            row["estimated_area"], (truth[keep] == classes.index(row["class"])).sum() * 0.01
        )
