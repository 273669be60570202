"""Accuracy and area estimates (`cmap assess`): the estimator against the published example of
Olofsson et al. (2014), and the command on the demo cube's known truth."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio

from cmap.main import main
from cmap.products.estimators import Z95, sample_metrics, stratified_estimates
from tests.helpers import REPO

DEMO = REPO / "data" / "demo"


def test_the_estimator_reproduces_the_published_example_of_olofsson_2014():
    """Section 5 of the paper: four strata (deforestation, forest gain, stable forest, stable
    non-forest) of a 30 m map, 10 000 000 pixels, 640 sample points (its Table 8)."""
    counts = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
    mapped = np.array([200_000, 150_000, 3_200_000, 6_450_000])
    e = stratified_estimates(counts, mapped)
    hectares = mapped.sum() * 0.09
    # the paper's estimated areas (ha) and 95 % half widths, as published (rounded to 1 ha)
    area = e["area_share"] * hectares
    assert np.allclose(area, [21_158, 11_686, 285_770, 581_386], atol=0.5)
    assert np.allclose(Z95 * e["area_share_se"] * hectares, [6_158, 3_756, 15_510, 16_282], atol=1)
    # accuracies +- 95 % half widths, published to two decimals
    assert np.allclose(e["users_accuracy"], [0.88, 0.73, 0.93, 0.96], atol=0.005)
    assert np.allclose(Z95 * e["users_accuracy_se"], [0.07, 0.10, 0.04, 0.02], atol=0.005)
    assert np.allclose(e["producers_accuracy"], [0.75, 0.85, 0.93, 0.96], atol=0.005)
    assert np.allclose(Z95 * e["producers_accuracy_se"], [0.21, 0.25, 0.03, 0.02], atol=0.005)
    assert (
        abs(e["overall_accuracy"] - 0.95) < 0.005
        and abs(Z95 * e["overall_accuracy_se"] - 0.02) < 0.005
    )
    assert np.isclose(e["proportions"].sum(), 1.0)


def test_the_finite_population_correction_by_hand():
    """Stratum 0: 10 samples of 20 pixels (half sampled), stratum 1: 4 of 4 (a census)."""
    counts = np.array([[8, 2], [0, 4]])  # rows: map, columns: reference
    e = stratified_estimates(counts, np.array([20, 4]))
    w0 = 20 / 24
    fpc = 1 - 10 / 20
    # stratum 0 alone carries sampling error: p(1-p)/(n-1) with p = 0.8, halved
    assert np.isclose(e["users_accuracy_se"][0], np.sqrt(fpc * 0.8 * 0.2 / 9))
    assert e["users_accuracy_se"][1] == 0
    assert np.allclose(e["area_share_se"], w0 * np.sqrt(fpc * 0.8 * 0.2 / 9))
    assert np.isclose(e["overall_accuracy_se"], w0 * np.sqrt(fpc * 0.8 * 0.2 / 9))
    # a full census of both strata: exact, no standard error left
    census = stratified_estimates(counts, np.array([10, 4]))
    for name in ("area_share_se", "users_accuracy_se", "producers_accuracy_se"):
        assert np.all(census[name] == 0), name
    assert census["overall_accuracy_se"] == 0


def test_plain_metrics_of_a_small_confusion_matrix():
    counts = np.array([[8, 2], [1, 9]])  # rows: map, columns: reference
    m = sample_metrics(counts)
    assert np.isclose(m["overall_accuracy"], 17 / 20)
    chance = (10 * 9 + 10 * 11) / 400
    assert np.isclose(m["kappa"], (0.85 - chance) / (1 - chance))
    assert np.allclose(m["users_accuracy"], [0.8, 0.9]) and np.allclose(
        m["producers_accuracy"], [8 / 9, 9 / 11]
    )
    assert np.isclose(m["macro_f1"], np.mean([16 / 19, 18 / 21]))


def damaged_truth(tmp_path):
    """The demo's truth as a map, with one field's pixels turned into another class."""
    path = tmp_path / "map.tif"
    shutil.copy(DEMO / "cube_truth.tif", path)
    with rasterio.open(path, "r+") as dst:
        truth = dst.read(1)
        wrong = truth.copy()
        wrong[:12][truth[:12] == 1] = 3  # some ble_tendre mapped as orge
        dst.write(wrong, 1)
    return path, truth, wrong


def test_assessing_a_map_against_the_demo_truth_census(tmp_path, capsys):
    path, truth, wrong = damaged_truth(tmp_path)
    main(["assess", str(path), str(DEMO / "cube_truth.tif"), "--output", str(tmp_path / "a")])
    said = capsys.readouterr().out
    assert "reference samples; overall accuracy" in said and f"wrote {tmp_path / 'a.png'}" in said
    result = json.loads((tmp_path / "a.json").read_text())
    valid = truth != 255
    counts = np.array(result["confusion"]["counts"])
    assert counts.sum() == valid.sum() and counts[3, 1] == ((wrong == 3) & (truth == 1)).sum() > 0
    assert np.isclose(result["overall_accuracy"], (wrong == truth)[valid].mean())
    rows = {r["class"]: r for r in result["classes"]}
    # every pixel is a sample: the estimated areas are the true areas (10 m pixels: 0.01 ha)
    for k, name in enumerate(["other", "ble_tendre", "ble_dur", "orge", "colza"]):
        assert np.isclose(rows[name]["estimated_area"], (truth == k).sum() * 0.01)
        assert np.isclose(rows[name]["mapped_area"], (wrong == k).sum() * 0.01)
        assert rows[name]["estimated_area_se"] == 0
        if rows[name]["mapped_pixels"]:  # else no user's accuracy at all (null)
            assert rows[name]["users_accuracy_se"] == 0
    assert result["overall_accuracy_se"] == 0  # a census has no sampling error
    assert rows["ble_tendre"]["producers_accuracy"] < 1 and rows["orge"]["users_accuracy"] < 1
    assert (tmp_path / "a.csv").read_text().startswith("class,mapped_pixels,mapped_area,")
    with pytest.raises(SystemExit):
        main(["assess", str(path), str(DEMO / "cube_truth.tif"), "--output", str(tmp_path / "a")])
    assert "a.json: already exists" in capsys.readouterr().err


def test_assessing_with_coded_points_and_a_label_mapping(tmp_path, capsys):
    path, truth, wrong = damaged_truth(tmp_path)
    main(["assess", str(path), str(DEMO / "cube_points.csv"),
          "--label_mapping", str(DEMO / "label_mapping.yaml")])  # fmt: skip
    result = json.loads((tmp_path / "map_assessment.json").read_text())
    assert result["samples"] == 36 and result["samples_without_map_value"] == 0
    with pytest.raises(SystemExit):
        main(["assess", str(path), str(DEMO / "cube_points.csv"), "--overwrite", "true"])
    err = capsys.readouterr().err
    assert "cube_points.csv: reference labels not among the map's classes: BOP, BTH" in err
    assert "give --label_mapping" in err
