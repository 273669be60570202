"""The product configs of configs/products run as their headers say, on the demo cube."""

from __future__ import annotations

import json
import shutil

import pytest

from cmap.main import main
from tests.helpers import REPO

CONFIGS = REPO / "configs" / "products"


def test_each_product_config_runs_on_the_demo(demo_probabilities, tmp_path, monkeypatch, capsys):
    pytest.importorskip("geopandas")
    monkeypatch.chdir(REPO)  # the configs name data/demo/... from the repository root
    path, *_ = demo_probabilities
    probabilities = tmp_path / "demo_map_probabilities.tif"
    shutil.move(path, probabilities)
    main(["smooth", "--config", str(CONFIGS / "smooth.yaml"), str(probabilities)])
    smoothed = tmp_path / "demo_map_smoothed.tif"
    main(["parcels", "--config", str(CONFIGS / "parcels.yaml"), str(probabilities)])
    said = capsys.readouterr().out  # the 10 m buffer leaves the smallest field 5 pixels
    assert "parcels: 11 with a class, 1 without (under 5 valid pixels)" in said
    main(["assess", "--config", str(CONFIGS / "assess.yaml"), str(smoothed)])
    result = json.loads((tmp_path / "demo_map_smoothed_assessment.json").read_text())
    assert result["samples"] + result["samples_without_map_value"] == 1245  # 12 under a cloud
    assert result["samples_without_map_value"] == 12 and result["reference"].endswith("truth.tif")
    main(["reference", "--config", str(CONFIGS / "reference.yaml"), str(smoothed)])
    assert (tmp_path / "demo_map_smoothed_reference.gpkg").exists()
    assert "drawn per class:" in capsys.readouterr().out
