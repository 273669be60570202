"""docs/extending.md's examples, run as they are written there: a user's encoder trained from
YAML, a user's kind of cube mapped like a GeoTIFF folder, a user's map product."""

from __future__ import annotations

import importlib
import re
import sys

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.module import CubeDataModule
from cmap.data.cubes.source import OPENERS
from cmap.errors import ConfigError
from cmap.io.maps import NODATA
from tests.helpers import DEMO, DEMO_CUBE, REPO, write_probabilities

PAGE = (REPO / "docs" / "extending.md").read_text()
BLOCKS = re.findall(r"```(python|yaml)\n(.*?)```", PAGE, re.S)


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """The page's Python blocks as importable modules (each names its file on its first
    line), its YAML blocks as files; kinds of cube the page registers are removed after."""
    files = {}
    for _, text in BLOCKS:
        name = re.match(r"# (\S+)", text).group(1)
        (tmp_path / name).write_text(text)
        files[name] = tmp_path / name
    monkeypatch.syspath_prepend(str(tmp_path))
    openers = list(OPENERS)
    yield files
    OPENERS[:] = openers
    for name in files:
        sys.modules.pop(name.removesuffix(".py"), None)


def test_the_page_has_its_three_examples():
    names = [re.match(r"# (\S+)", text).group(1) for _, text in BLOCKS]
    assert names == ["my_encoders.py", "mean.yaml", "npz_cube.py", "confident.py"]


def test_a_users_encoder_trains_from_yaml(modules):
    from cmap.cli import build

    args = ["--config", str(DEMO), "--model", str(modules["mean.yaml"])]
    args += ["--trainer.logger", "false", "--trainer.max_epochs", "1"]
    args += ["--trainer.enable_checkpointing", "false", "--trainer.callbacks", "[]"]
    cli = build(args)
    encoder = cli.model.encoder
    assert type(encoder).__name__ == "MeanEncoder" and encoder.out_dim == 64
    before = [p.detach().clone() for p in encoder.parameters()]
    cli.trainer.fit(cli.model, cli.datamodule)
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    # what the kind declares is checked where the block is given
    del encoder.out_dim
    with pytest.raises(ConfigError, match=r"MeanEncoder \(an Encoder\) must set `out_dim`"):
        type(cli.model)(encoder, cli.model.decoder, cli.model.criterion, cli.model.classes)


def test_a_users_kind_of_cube_is_mapped_like_a_geotiff_folder(modules, tmp_path):
    reference = Cube(DEMO_CUBE)
    whole = Window(0, 0, reference.width, reference.height)
    values, _ = reference.read(whole)
    np.savez(
        tmp_path / "tile.npz",
        values=values.astype(np.int16),  # the demo's stored values, 0 where there is none
        bands=np.array(reference.bands),
        dates=reference.dates.astype(str),
        crs=str(reference.crs),
        transform=np.array(list(reference.transform)[:6]),
    )
    importlib.import_module("npz_cube")
    mine = CubeDataModule(str(tmp_path / "tile.npz"), window_size=16, batch_size=256)
    geotiff = CubeDataModule(str(DEMO_CUBE), scale=1.0, window_size=16, batch_size=256)
    assert type(mine.cube).__name__ == "NpzCube"
    assert mine.source_files()[1] == [tmp_path / "tile.npz"]
    assert mine.map_windows() == geotiff.map_windows() and mine.year == geotiff.year
    for ours, theirs in zip(mine.predict_dataloader(), geotiff.predict_dataloader()):
        for key in ("ts", "positions", "mask"):
            assert torch.equal(ours[key], theirs[key]), key
    with pytest.raises(ConfigError, match="is a NumPy cube, which takes no quality_band"):
        CubeDataModule(str(tmp_path / "tile.npz"), quality_band="SCL")


def test_a_users_map_product(modules, tmp_path):
    confident = importlib.import_module("confident")
    p = np.zeros((3, 4, 5))
    p[0], p[1] = 0.9, 0.1  # certain of class 0 ...
    p[:, :, 3:] = [[[0.5]], [[0.4]], [[0.1]]]  # ... but not on the last two columns
    missing = np.zeros((4, 5), bool)
    missing[0, 0] = True
    source = write_probabilities(tmp_path / "m_probabilities.tif", p, missing)
    out = confident.confident_map(source, tmp_path / "confident.tif", threshold=0.8)
    with rasterio.open(out) as src:
        labels = src.read(1)
        assert src.tags()["CONFIDENT_AT"] == "0.8" and src.crs == "EPSG:32631"
    expected = np.zeros((4, 5), np.uint8)
    expected[:, 3:] = NODATA
    expected[0, 0] = NODATA
    assert np.array_equal(labels, expected)
