"""Uncertainty rasters from a map's class probabilities (`cmap uncertainty`)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from cmap.main import main
from cmap.products.uncertainty import measures
from tests.helpers import TRANSFORM, write_probabilities


def test_measures_of_certain_uniform_and_split_pixels():
    p = np.array([[1.0, 1 / 3, 0.5], [0.0, 1 / 3, 0.5], [0.0, 1 / 3, 0.0]])  # [K=3, 3 pixels]
    entropy, margin, least = measures(p)
    assert np.allclose(entropy, [0.0, 1.0, np.log(2) / np.log(3)])
    assert np.allclose(margin, [1.0, 0.0, 0.0])
    assert np.allclose(least, [0.0, 2 / 3, 0.5])


def test_uncertainty_of_a_probabilities_file(tmp_path, capsys):
    p = np.zeros((2, 300, 4))  # more rows than one block
    p[0] = np.linspace(0, 1, 300)[:, None]
    p[1] = 1 - p[0]
    source = tmp_path / "map_probabilities.tif"
    missing = np.zeros((300, 4), bool)
    missing[5, 2] = True
    write_probabilities(source, p, missing, ["a", "b"])
    main(["uncertainty", str(source)])
    out = tmp_path / "map_uncertainty.tif"
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and f"wrote {out.with_suffix('.png')}" in said
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    with rasterio.open(out) as src:
        bands, tags, names = src.read(), src.tags(), src.descriptions
        assert (src.transform, src.crs, src.dtypes[0]) == (TRANSFORM, "EPSG:32631", "float32")
    assert names == ("entropy", "margin", "least_confidence") and tags["SEASON"] == "2021"
    assert np.isnan(bands[:, 5, 2]).all() and not np.isnan(bands[:, 6, 2]).any()
    stored = np.round(p * 255) / 255
    assert np.allclose(bands[1, 0], np.abs(stored[0, 0] - stored[1, 0]), atol=1e-6)
    assert np.allclose(bands[2, 299], 1 - stored.max(0)[299], atol=1e-6)
    assert bands[0, 150].min() > 0.99 and bands[0, 0].max() < 1e-6  # ~uniform / certain
    with pytest.raises(SystemExit):
        main(["uncertainty", str(source)])
    assert "map_uncertainty.tif: already exists" in capsys.readouterr().err
    main(["uncertainty", str(source), "--overwrite", "true"])
