"""`cmap priors`: EM re-estimation of a new season's class prior and Bayes' adjustment."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio

from cmap.io.maps import NODATA
from cmap.main import main
from cmap.products.priors import adjust, em_prior

MEANS = np.array([-2.0, 0.0, 2.0])  # three classes, x | k ~ N(mean_k, 1)
TRAINING = np.array([0.6, 0.3, 0.1])


def posteriors(x: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The exact p(k | x) [N, K] under `prior`."""
    likelihood = np.exp(-0.5 * (x[:, None] - MEANS) ** 2)
    joint = likelihood * prior
    return joint / joint.sum(axis=1, keepdims=True)


def draw(prior: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.choice(3, size=n, p=prior)
    return MEANS[k] + rng.normal(size=n), k


def test_adjusting_gives_the_exact_posterior_under_the_new_prior():
    x = np.linspace(-5, 5, 101)
    target = np.array([0.1, 0.2, 0.7])
    np.testing.assert_allclose(
        adjust(posteriors(x, TRAINING), TRAINING, target), posteriors(x, target), atol=1e-12
    )


def test_em_recovers_a_shifted_prior_and_gains_accuracy():
    target = np.array([0.1, 0.2, 0.7])
    x, k = draw(target, 20_000, seed=1)
    p = posteriors(x, TRAINING)
    prior, iterations = em_prior(p, TRAINING)
    np.testing.assert_allclose(prior, target, atol=0.02)
    assert 1 < iterations < 1000
    before = (p.argmax(1) == k).mean()
    after = (adjust(p, TRAINING, prior).argmax(1) == k).mean()
    assert after > before + 0.05  # the frequent class no longer goes to the others


def test_em_leaves_unshifted_data_alone():
    x, _ = draw(TRAINING, 20_000, seed=2)
    p = posteriors(x, TRAINING)
    prior, _ = em_prior(p, TRAINING)
    np.testing.assert_allclose(prior, TRAINING, atol=0.02)
    changed = adjust(p, TRAINING, prior).argmax(1) != p.argmax(1)
    assert changed.mean() < 0.02


def write_points(path, p: np.ndarray, prior: np.ndarray | None):
    classes = ["a", "b", "c"]
    columns = {
        "poi_id": pa.array([f"p{i}" for i in range(len(p))]),
        "season": pa.array(np.full(len(p), 2021, np.int32)),
        "label": pa.array(np.array(classes)[p.argmax(1)]),
        "confidence": pa.array(p.max(1)),
    } | {f"p_{c}": pa.array(p[:, i]) for i, c in enumerate(classes)}
    metadata = {} if prior is None else {"OUTPUT_PRIOR": ",".join(map(str, prior))}
    pq.write_table(pa.table(columns).replace_schema_metadata(metadata), path)
    return path


def test_point_predictions_are_adjusted_in_their_own_layout(tmp_path, capsys):
    target = np.array([0.1, 0.2, 0.7])
    x, k = draw(target, 5000, seed=3)
    p = posteriors(x, TRAINING)
    source = write_points(tmp_path / "predictions.parquet", p, TRAINING)
    main(["priors", str(source)])
    out = capsys.readouterr().out
    assert "EM (Saerens et al. 2002)" in out and "wrote" in out
    table = pq.read_table(tmp_path / "predictions_adjusted.parquet")
    assert table.column_names == pq.read_table(source).column_names
    q = np.stack([table[f"p_{c}"].to_numpy() for c in "abc"], axis=1)
    np.testing.assert_allclose(q.sum(1), 1)
    assert table["label"].to_pylist() == list(np.array(list("abc"))[q.argmax(1)])
    np.testing.assert_allclose(table["confidence"].to_numpy(), q.max(1))
    record = json.loads((tmp_path / "predictions_adjusted_priors.json").read_text())
    np.testing.assert_allclose(record["prior"], target, atol=0.03)
    assert record["reference"] == pytest.approx(TRAINING.tolist())
    assert record["share_after"][2] > record["share_before"][2]
    stored = table.schema.metadata[b"OUTPUT_PRIOR"].decode().split(",")
    np.testing.assert_allclose([float(v) for v in stored], record["prior"], atol=1e-5)
    assert (q.argmax(1) == k).mean() > (p.argmax(1) == k).mean()
    with pytest.raises(SystemExit):  # no silent overwrite
        main(["priors", str(source)])


def test_a_given_prior_is_used_as_is(tmp_path):
    p = posteriors(np.linspace(-3, 3, 50), TRAINING)
    source = write_points(tmp_path / "points.parquet", p, TRAINING)
    main(["priors", str(source), "--prior", "[1, 1, 2]", "--output", str(tmp_path / "o.parquet")])
    record = json.loads((tmp_path / "o_priors.json").read_text())
    assert record["method"] == "given" and record["prior"] == [0.25, 0.25, 0.5]
    by_name = tmp_path / "n.parquet"
    main(["priors", str(source), "--prior", "{c: 2, a: 1, b: 1}", "--output", str(by_name)])
    assert pq.read_table(by_name).equals(pq.read_table(tmp_path / "o.parquet"))
    main(["priors", str(source), "--prior", "{a: 1}", "--output", str(tmp_path / "a.parquet")])
    assert set(pq.read_table(tmp_path / "a.parquet")["label"].to_pylist()) == {"a"}
    q = np.stack([pq.read_table(tmp_path / "o.parquet")[f"p_{c}"] for c in "abc"], axis=1)
    np.testing.assert_allclose(q, posteriors(np.linspace(-3, 3, 50), np.array([1, 1, 2]) / 4))


def test_predictions_without_an_output_prior_need_a_reference(tmp_path, capsys):
    p = posteriors(np.linspace(-3, 3, 50), TRAINING)
    source = write_points(tmp_path / "old.parquet", p, None)
    with pytest.raises(SystemExit):
        main(["priors", str(source)])
    said = capsys.readouterr().err
    assert "old.parquet: records no output prior" in said and "--reference_prior" in said
    main(["priors", str(source), "--reference_prior", "[6, 3, 1]"])
    record = json.loads((tmp_path / "old_adjusted_priors.json").read_text())
    assert record["reference"] == pytest.approx(TRAINING.tolist())
    with pytest.raises(SystemExit):
        main(["priors", str(source), "--prior", "[1, 2]", "--overwrite", "true"])
    assert "prior needs 3 non-negative values" in capsys.readouterr().err


def test_a_map_is_adjusted_block_by_block(demo_probabilities, tmp_path):
    path, p, missing, _ = demo_probabilities
    reference = np.full(7, 1 / 7)
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(OUTPUT_PRIOR=",".join(map(str, reference)))
    main(["priors", str(path), "--prior", "[4, 1, 1, 1, 1, 1, 1]"])
    with rasterio.open(tmp_path / "m_adjusted.tif") as src:
        labels, tags = src.read(1), src.tags()
    with rasterio.open(tmp_path / "m_adjusted_probabilities.tif") as src:
        q = src.read()
    expected = adjust(p.reshape(7, -1).T, reference, np.array([4, 1, 1, 1, 1, 1, 1]) / 10)
    np.testing.assert_allclose(q[:, ~missing], expected.T.reshape(q.shape)[:, ~missing], atol=1e-6)
    assert np.array_equal(labels == NODATA, missing)
    assert np.array_equal(labels[~missing], q.argmax(0)[~missing])
    assert tags["OUTPUT_PRIOR"].startswith("0.4,") and "given" in tags["PRIOR_SHIFT"]
    main(["priors", str(path), "--output", str(tmp_path / "em.tif"), "--max_pixels", "500"])
    record = json.loads((tmp_path / "em_priors.json").read_text())
    assert 400 < record["samples"] < 600 and record["method"].startswith("EM")
    assert sum(record["prior"]) == pytest.approx(1, abs=1e-5)
