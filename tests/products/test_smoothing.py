"""Spatial smoothing of probability maps (`cmap smooth`): the methods' values, nodata kept
out of neighbourhoods, and results independent of the blocks."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from cmap.main import main
from cmap.products.smoothing import bayes, smooth_probabilities
from tests.helpers import write_probabilities


def noisy_fields(seed: int = 0, shape=(37, 45), k: int = 3):
    """Three vertical fields, each pixel's true class likeliest on average but noisy, and a
    patch without values."""
    rng = np.random.default_rng(seed)
    truth = np.minimum(np.arange(shape[1]) * k // shape[1], k - 1)[None].repeat(shape[0], 0)
    logits = rng.normal(0, 1.0, (k, *shape)) + 1.2 * (truth[None] == np.arange(k)[:, None, None])
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    missing = np.zeros(shape, bool)
    missing[10:16, 5:20] = True
    return p, missing, truth


def read(path):
    with rasterio.open(path) as src:
        return src.read(masked=True)


@pytest.mark.parametrize("method", ["bayes", "gaussian", "majority"])
def test_smoothing_is_independent_of_blocks_and_ignores_missing_values(tmp_path, method):
    p, missing, truth = noisy_fields()
    source = write_probabilities(tmp_path / "map_probabilities.tif", p, missing, dtype="float32")
    results = []
    for block in (256, 7):
        out = tmp_path / f"smooth_{block}.tif"
        smooth_probabilities(source, out, method, window=5, sigma=1.5, block=block)
        results.append((read(out), read(tmp_path / f"smooth_{block}_probabilities.tif")))
    (labels, probs), (labels_tiled, probs_tiled) = results
    assert np.array_equal(probs.filled(-1), probs_tiled.filled(-1))  # bitwise, every block
    assert np.array_equal(labels.filled(0), labels_tiled.filled(0))
    assert (labels.mask[0] == missing).all() and np.isnan(probs.data[:, missing]).all()
    assert np.allclose(probs.sum(axis=0)[~missing], 1, atol=1e-5)
    raw = (p.argmax(axis=0) == truth)[~missing].mean()
    assert (labels[0] == truth)[~missing].mean() > raw + 0.1  # noise removed
    # values under the missing pixels do not reach their neighbours
    p[:, missing] = np.array([1.0, 0.0, 0.0])[:, None]
    changed = write_probabilities(tmp_path / "b_probabilities.tif", p, missing, dtype="float32")
    smooth_probabilities(changed, tmp_path / "b_smooth.tif", method, window=5, sigma=1.5)
    assert np.array_equal(
        read(tmp_path / "b_smooth_probabilities.tif").filled(-1), probs.filled(-1)
    )


def test_bayes_posterior_of_one_pixel_by_hand():
    p = np.array([[0.9, 0.8, 0.7], [0.2, 0.3, 0.6], [0.5, 0.5, 0.5]])[None]  # K=1 shape [1,3,3]
    p = np.concatenate([p, 1 - p])
    missing = np.zeros((3, 3), bool)
    missing[2, 2] = True
    out = bayes(p, missing, window=3, smoothness=np.array([4.0, 4.0]), fraction=0.5)
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    near = np.sort(logit(np.array([0.9, 0.8, 0.7, 0.2, 0.3, 0.6, 0.5, 0.5])))[::-1][:4]
    m, s2 = near.mean(), near.var(ddof=1)  # the likeliest half of 8 valid neighbours
    x = logit(0.3)
    first = 1 / (1 + np.exp(-(s2 * x + 4 * m) / (s2 + 4)))
    other = np.sort(-logit(np.array([0.9, 0.8, 0.7, 0.2, 0.3, 0.6, 0.5, 0.5])))[::-1][:4]
    m2, v2 = other.mean(), other.var(ddof=1)
    second = 1 / (1 + np.exp(-(v2 * -x + 4 * m2) / (v2 + 4)))
    assert np.isclose(out[0, 1, 1], first / (first + second))
    uniform = bayes(np.full((2, 3, 3), 0.5), missing, 3, np.array([4.0, 4.0]), 0.5)
    assert np.allclose(uniform, 0.5)  # a flat neighbourhood changes nothing


def test_smooth_command_writes_a_tagged_map_and_refuses_bad_settings(tmp_path, capsys):
    p, missing, truth = noisy_fields()
    source = write_probabilities(tmp_path / "map_probabilities.tif", p, missing, ["a", "b", "c"])
    main(["smooth", str(source), "--smoothness", "[10, 20, 30]"])
    out = tmp_path / "map_smoothed.tif"
    assert f"wrote {out}" in capsys.readouterr().out
    with rasterio.open(out) as src:
        tags, colours = src.tags(), src.colormap(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255
    assert tags["CLASS_0"] == "a" and tags["SEASON"] == "2021" and "bayes" in tags["SMOOTHING"]
    assert colours[255][3] == 0
    with rasterio.open(tmp_path / "map_smoothed_probabilities.tif") as src:
        assert src.descriptions == ("a", "b", "c") and src.dtypes[0] == "uint8"
        assert (src.read_masks(1) == 0).sum() == missing.sum()
    for args, message in [
        (["--window", "4"], "window must be an odd number"),
        (["--smoothness", "[1, 2]"], "smoothness takes one positive variance, or one per class"),
        ([], "map_smoothed.tif: already exists"),
        (["--output", str(source)], "the output would replace the input"),
    ]:
        with pytest.raises(SystemExit):
            main(["smooth", str(source), *args])
        assert message in capsys.readouterr().err
