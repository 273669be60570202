"""Stratified random reference samples drawn from a map (`cmap reference`), and their use by
`cmap assess` once labelled."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.csv as pv
import pytest
import rasterio
from rasterio.transform import rowcol

from cmap.main import main
from cmap.products.sampling import allocate
from tests.helpers import REPO

TRUTH = REPO / "data" / "demo" / "cube_truth.tif"


def test_allocation_equal_proportional_and_capped():
    mapped = np.array([9000, 900, 100, 0])
    assert allocate(mapped, 50, None, 0).tolist() == [50, 50, 50, 0]
    assert allocate(mapped, None, 100, 0).tolist() == [90, 9, 1, 0]
    assert allocate(mapped, None, 100, 20).tolist() == [90, 20, 20, 0]
    assert allocate(np.array([5, 500]), 50, None, 0).tolist() == [5, 50]  # all a class has


def test_a_seeded_sample_of_the_demo_truth_lies_on_its_classes(tmp_path, capsys):
    with rasterio.open(TRUTH) as src:
        truth, transform = src.read(1), src.transform
    names = ["other", "ble_tendre", "ble_dur", "orge", "colza", "mais", "tournesol"]
    out = tmp_path / "ref.csv"
    main(["reference", str(TRUTH), "--per_class", "20", "--output", str(out), "--seed", "3"])
    said = capsys.readouterr().out
    assert "drawn per class: other 20, ble_tendre 20, orge 20, colza 20, mais 20" in said
    table = pv.read_csv(out).to_pydict()
    r, c = rowcol(transform, table["x"], table["y"])
    assert [names[truth[i, j]] for i, j in zip(r, c)] == table["map_class"]
    assert len(set(zip(r, c))) == 100  # without replacement
    again = tmp_path / "again.csv"
    main(["reference", str(TRUTH), "--per_class", "20", "--output", str(again), "--seed", "3"])
    assert again.read_bytes() == out.read_bytes()
    main(["reference", str(TRUTH), "--per_class", "20", "--output", str(tmp_path / "o.csv")])
    assert (tmp_path / "o.csv").read_bytes() != out.read_bytes()  # another seed


def test_a_labelled_vector_sample_is_assessed(tmp_path, capsys):
    geopandas = pytest.importorskip("geopandas")
    map_path = tmp_path / "map.tif"
    shutil.copy(TRUTH, map_path)
    main(["reference", str(map_path), "--total", "200", "--min_per_class", "25"])
    assert "other 71, ble_tendre 69, orge 25, colza 28, mais 25" in capsys.readouterr().out
    points = tmp_path / "map_reference.gpkg"
    frame = geopandas.read_file(points)
    assert frame.crs == "EPSG:32631" and len(frame) == 71 + 69 + 25 + 28 + 25  # orge, mais: 25
    frame["label"] = frame["map_class"]  # a perfect map: the surveyor agrees everywhere
    frame.to_file(tmp_path / "labelled.gpkg")
    capsys.readouterr()
    main(["assess", str(map_path), str(tmp_path / "labelled.gpkg")])
    result = json.loads((tmp_path / "map_assessment.json").read_text())
    assert result["samples"] == len(frame) and result["overall_accuracy"] == 1.0
    for row in result["classes"]:
        assert np.isclose(row["estimated_area"], row["mapped_area"])
    with pytest.raises(SystemExit):
        main(["reference", str(map_path), "--per_class", "5", "--output", str(tmp_path / "a.shp")])
    assert "name a .csv, .gpkg, .geojson, .fgb, .parquet output" in capsys.readouterr().err
