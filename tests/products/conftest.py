"""Fixtures of the map-product tests: probabilities on the demo cube's grid."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tests.helpers import REPO, write_probabilities

DEMO = REPO / "data" / "demo"
CLASSES = ["other", "ble_tendre", "ble_dur", "orge", "colza", "mais", "tournesol"]


@pytest.fixture
def demo_probabilities(tmp_path):
    """Random probabilities on the demo cube's grid, missing on a few pixels."""
    with rasterio.open(DEMO / "cube_truth.tif") as src:
        truth = src.read(1)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), size=truth.shape).transpose(2, 0, 1)  # [K, H, W]
    missing = truth == 255
    missing[20:23, 5:9] = True  # a cloud inside a field
    path = write_probabilities(tmp_path / "m_probabilities.tif", p, missing, CLASSES, "float32")
    with rasterio.open(path, "r+") as dst:  # the demo cube's grid
        dst.transform = src.transform
    return path, p, missing, truth
