"""`cmap average`: several models' predictions averaged into one (a seed ensemble)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio

from cmap.io.maps import NODATA
from cmap.main import main
from tests.helpers import write_probabilities


def test_maps_are_averaged_pixel_by_pixel(demo_probabilities, tmp_path):
    path, p, missing, _ = demo_probabilities
    rng = np.random.default_rng(1)
    q = rng.dirichlet(np.ones(7), size=missing.shape).transpose(2, 0, 1)
    q_missing = missing.copy()
    q_missing[0, :] = True  # the second map lacks a row the first has
    with rasterio.open(path) as src:
        classes = list(src.descriptions)
    other = write_probabilities(tmp_path / "b_probabilities.tif", q, q_missing, classes, "float32")
    with rasterio.open(path) as src, rasterio.open(other, "r+") as dst:
        dst.transform = src.transform
    for name, values in (
        ("m", "0.5,0.1,0.1,0.1,0.1,0.05,0.05"),
        ("b", "0.3,0.2,0.1,0.1,0.1,0.1,0.1"),
    ):
        with rasterio.open(tmp_path / f"{name}_probabilities.tif", "r+") as dst:
            dst.update_tags(OUTPUT_PRIOR=values)
    main(["average", f"[{path}, {other}]"])
    with rasterio.open(tmp_path / "m_ensemble.tif") as src:
        labels, tags = src.read(1), src.tags()
    with rasterio.open(tmp_path / "m_ensemble_probabilities.tif") as src:
        mean = src.read()
    both = ~missing & ~q_missing
    np.testing.assert_allclose(mean[:, both], ((p + q) / 2)[:, both], atol=1e-6)
    only_first = ~missing & q_missing
    np.testing.assert_allclose(mean[:, only_first], p[:, only_first], atol=1e-6)
    assert np.array_equal(labels == NODATA, missing)
    assert np.array_equal(labels[~missing], mean.argmax(0)[~missing])
    assert tags["OUTPUT_PRIOR"].startswith("0.4,0.15,") and "b_probabilities" in tags["ENSEMBLE"]


def points(path, p, ids=None):
    ids = ids or [f"p{i}" for i in range(len(p))]
    columns = {"poi_id": pa.array(ids), "season": pa.array(np.full(len(p), 2021, np.int32)),
               "label": pa.array(["x"] * len(p)), "confidence": pa.array(p.max(1))}  # fmt: skip
    columns |= {f"p_{c}": pa.array(p[:, k]) for k, c in enumerate("ab")}
    pq.write_table(pa.table(columns), path)
    return path


def test_point_predictions_are_averaged_row_by_row(tmp_path, capsys):
    first = points(tmp_path / "s0.parquet", np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]]))
    second = points(tmp_path / "s1.parquet", np.array([[0.5, 0.5], [0.8, 0.2], [0.1, 0.9]]))
    main(["average", f"[{first}, {second}]", "--output", str(tmp_path / "mean.parquet")])
    table = pq.read_table(tmp_path / "mean.parquet")
    np.testing.assert_allclose(table["p_a"].to_numpy(), [0.7, 0.6, 0.2])
    assert table["label"].to_pylist() == ["a", "a", "b"]
    np.testing.assert_allclose(table["confidence"].to_numpy(), [0.7, 0.6, 0.8])
    assert table["poi_id"].to_pylist() == ["p0", "p1", "p2"]
    shuffled = points(tmp_path / "s2.parquet", np.full((3, 2), 0.5), ["p1", "p0", "p2"])
    with pytest.raises(SystemExit):
        main(["average", f"[{first}, {shuffled}]"])
    assert "s2.parquet: does not predict the same points, in order, as" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["average", f"[{first}]"])
    assert "give at least two predictions to average, got 1" in capsys.readouterr().err
