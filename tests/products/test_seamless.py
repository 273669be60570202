"""Seamless maps: windows shifted by half a window give the same map, before and after
smoothing (the model sees each pixel alone; smoothing reads halos across windows)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from cmap.main import main
from tests.helpers import DEMO_CUBE, REPO


def predict(checkpoint, output, offset: int, *extra):
    main([
        *("predict", "--config", str(REPO / "configs" / "predict_demo.yaml")),
        *("--data.init_args.cube", str(DEMO_CUBE), "--ckpt_path", str(checkpoint)),
        *("--trainer.callbacks.output", str(output), "--trainer.enable_progress_bar", "false"),
        *("--trainer.callbacks.quicklook", "false", "--trainer.logger", "false"),
        *("--data.init_args.window_size", "16", "--data.init_args.window_offset", str(offset)),
        *("--trainer.callbacks.probability_dtype", "float32"), *map(str, extra),
    ])  # fmt: skip


def read(path):
    with rasterio.open(path) as src:
        return src.read(masked=True)


def test_half_window_shifted_windows_give_the_same_map(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    predict(checkpoint, tmp_path / "a.tif", 0)
    predict(checkpoint, tmp_path / "b.tif", 8)  # windows cut at 8, 24: across a's windows
    a, b = read(tmp_path / "a.tif"), read(tmp_path / "b.tif")
    assert (a.mask == b.mask).all() and (~a.mask).sum() > 1000
    assert (a == b).mean() >= 0.999  # of the valid pixels
    pa, pb = read(tmp_path / "a_probabilities.tif"), read(tmp_path / "b_probabilities.tif")
    assert np.allclose(pa.filled(0), pb.filled(0), atol=1e-5)
    for name in ("a", "b"):
        main(["smooth", str(tmp_path / f"{name}_probabilities.tif"), "--window", "5"])
    sa, sb = read(tmp_path / "a_smoothed.tif"), read(tmp_path / "b_smoothed.tif")
    assert (sa == sb).mean() >= 0.999


def test_products_made_by_predict_itself(checkpoint, tmp_path, monkeypatch, capsys):
    """`MapProducts` after the map writer: uncertainty, smoothed map and parcels at the end."""
    pytest.importorskip("geopandas")
    monkeypatch.chdir(tmp_path)
    parcels = REPO / "data" / "demo" / "cube_parcels.geojson"
    products = ["--trainer.callbacks+=cmap.products.MapProducts", "--trainer.callbacks.smooth"]
    products += ["majority", "--trainer.callbacks.parcels", parcels]
    predict(checkpoint, tmp_path / "m.tif", 0, *products)
    err = capsys.readouterr().err
    for name in ("m_uncertainty.tif", "m_smoothed.tif", "m_smoothed_probabilities.tif",
                 "m_parcels.gpkg"):  # fmt: skip
        assert f"cmap: wrote {tmp_path / name}" in err and (tmp_path / name).exists()
    assert "cmap: parcels: 12 with a class" in err
    with pytest.raises(SystemExit):
        main([
            *("predict", "--config", str(REPO / "configs" / "predict_demo.yaml")),
            *("--data.init_args.cube", str(DEMO_CUBE), "--ckpt_path", str(checkpoint)),
            *("--trainer.callbacks.output", str(tmp_path / "n.tif")),
            *("--trainer.callbacks.probabilities", "false"),
            "--trainer.callbacks+=cmap.products.MapProducts",
        ])  # fmt: skip
    assert "MapProducts needs the CubeMapWriter's probabilities: true" in capsys.readouterr().err
