"""Raster cubes: reading windows, validity masks, seasons, pixel batches for pretraining."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

from cmap.data import CubeDataModule
from cmap.data.cubes.geotiff import Cube, parse_date
from cmap.data.cubes.pixels import pixel_series
from cmap.data.cubes.source import CubeOptions
from cmap.errors import ConfigError, DataError
from cmap.io.checkpoints import encoder_from_checkpoint
from cmap.tasks.classifier import Classifier
from tests.helpers import DEMO_CUBE, REPO, small_cube, write_tif


def test_dates_parse_from_both_layouts(tmp_path):
    assert parse_date("S2A_20210314_T31TCJ") == np.datetime64("2021-03-14")
    assert parse_date("x_B04_2021-03-14") == np.datetime64("2021-03-14")
    assert parse_date("tile_123_B04") is None
    stacked = Cube(small_cube(tmp_path / "stacked"))
    assert stacked.bands == ["B04", "B08"] and len(stacked.dates) == 3
    per_band = tmp_path / "per_band"
    per_band.mkdir()
    for date in ("20210301", "20210311"):
        for k, band in enumerate(("B04", "B08")):
            write_tif(per_band / f"T31TCJ_{band}_{date}.tif", np.full((1, 4, 5), k + 1, np.int16))
    cube = Cube(per_band)
    assert cube.bands == ["B04", "B08"]
    assert cube.dates.tolist() == [np.datetime64("2021-03-01"), np.datetime64("2021-03-11")]
    values, valid = cube.read(Window(0, 0, 5, 4))
    assert values.shape == (2, 2, 4, 5) and (values[:, 1] == 2).all() and valid.all()


def test_window_reads_mask_nodata_per_pixel_and_date(tmp_path):
    cube = Cube(small_cube(tmp_path / "c"), CubeOptions(scale=0.5))
    values, valid = cube.read(Window(1, 1, 3, 2))  # rows 1-2, cols 1-3
    assert values.shape == (3, 2, 2, 3)
    assert values[2, 1, 0, 0] == pytest.approx((20 + 6 + 200) * 0.5)  # B08, date 3, pixel (1,1)
    assert valid[:, 0, 0].tolist() == [True, False, True]
    series = pixel_series(*cube.read(Window(0, 0, 5, 4)))
    assert 0 not in series["pixel"].tolist()  # no valid date: not predicted
    i = series["pixel"].tolist().index(6)
    assert series["mask"][i].tolist() == [True, True, False]  # valid dates first
    assert series["date"][i, :2].tolist() == [0, 2]
    assert series["ts"][i, 1, 0] == pytest.approx((6 + 200) * 0.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crs": "EPSG:4326"}, "CRS EPSG:4326 differs from the first file's EPSG:32631"),
        ({"transform": from_origin(500_010.0, 4_800_000.0, 10.0, 10.0)}, "transform"),
        ({"shape": (2, 3, 5)}, "size 5 x 3 differs from the first file's 5 x 4"),
        ({"shape": (3, 4, 5)}, "has 3 bands, the first file 2"),
        ({"names": ["B04", "B8A"]}, "bands ['B04', 'B8A'] differ from the first file's"),
    ],
)
def test_misaligned_files_are_named(tmp_path, change, message):
    folder = small_cube(tmp_path / "c")
    odd = folder / "S2_2021-03-31.tif"
    data = np.ones(change.pop("shape", (2, 4, 5)), np.int16)
    write_tif(odd, data, names=change.pop("names", ["B04", "B08", "B11"][: len(data)]), **change)
    with pytest.raises(DataError) as error:
        Cube(folder)
    assert str(error.value).startswith(f"{odd}: ") and message in str(error.value)


def test_other_cube_errors(tmp_path):
    folder = small_cube(tmp_path / "c")
    with pytest.raises(DataError, match=r"unknown band\(s\) \['B02'\]; the cube has B04, B08"):
        Cube(folder, CubeOptions(bands=["B02", "B04"]))
    (folder / "notes_nodate.tif").write_bytes(b"")
    with pytest.raises(DataError, match="notes_nodate.tif: no date"):
        Cube(folder)
    (folder / "notes_nodate.tif").unlink()
    (folder / "S2_2021-04-01.tif").write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="S2_2021-04-01.tif: cannot be read as a GeoTIFF"):
        Cube(folder)
    with pytest.raises(DataError, match="cube folder not found"):
        Cube(tmp_path / "nowhere")
    per_band = tmp_path / "per_band"
    per_band.mkdir()
    write_tif(per_band / "t_B04_20210301.tif", np.ones((1, 4, 5), np.int16))
    write_tif(per_band / "t_B08_20210301.tif", np.ones((1, 4, 5), np.int16))
    write_tif(per_band / "t_B04_20210311.tif", np.ones((1, 4, 5), np.int16))
    with pytest.raises(DataError, match=r"1 date\(s\) lack band\(s\), e.g. 2021-03-11 has no"):
        Cube(per_band)


def test_season_is_inferred_and_dates_outside_it_refused(tmp_path):
    data = CubeDataModule(str(small_cube(tmp_path / "c")), season_start="11-01")
    assert data.year == 2021 and str(data.first_day) == "2020-11-01"
    with pytest.raises(DataError, match=r"3 date\(s\) outside season 2023"):
        CubeDataModule(str(tmp_path / "c"), year=2023)


def pixel_module(**kwargs) -> CubeDataModule:
    data = CubeDataModule(str(DEMO_CUBE), window_size=16, batch_size=64, **kwargs)
    data.setup("fit")
    return data


def indices(loader) -> list[int]:
    return [i for batch in loader for i in batch["index"].tolist()]


def test_cube_pixels_batches_hold_the_cube_values_of_unlabelled_pixels():
    data = pixel_module()
    windows = data.split_windows()  # the demo cube is 40 x 40: 9 windows of at most 16 x 16
    assert (len(windows["train"]), len(windows["val"])) == (8, 1)
    train_area = sum(int(w.width * w.height) for w in windows["train"])
    loader = data.train_dataloader()
    assert len(loader) == -(-train_area // 64)
    batches = list(loader)
    assert len(batches) == len(loader)
    values, valid = data.cube.read(Window(0, 0, 40, 40))  # [T, C, 40, 40], [T, 40, 40]
    days = (data.cube.dates - data.first_day).astype(np.int64)
    for batch in batches[:3]:
        n, t = batch["mask"].shape
        assert batch["ts"].shape == (n, t, 10) and n == 64
        assert (batch["class"] == -1).all() and (batch["season"] == 2021).all()
        counts = batch["mask"].sum(dim=1)
        assert counts.min() >= 1 and counts.max() == t  # padded to the batch's longest
        assert torch.equal(batch["mask"], torch.arange(t) < counts[:, None])  # valid first
        for k in (0, n - 1):
            row, col = divmod(int(batch["index"][k]), 40)
            dates = np.flatnonzero(valid[:, row, col])
            mask = batch["mask"][k]
            assert np.array_equal(batch["positions"][k][mask].numpy(), days[dates])
            np.testing.assert_array_equal(batch["ts"][k][mask].numpy(), values[dates, :, row, col])


def test_prediction_batches_are_padded_to_their_own_longest_series():
    """A window's pixels come longest first, each batch as wide as its longest series, every
    valid pixel once, with its own values at its valid dates."""
    data = CubeDataModule(str(DEMO_CUBE), window_size=16, batch_size=32)
    data.setup("predict")
    values, valid = data.cube.read(Window(0, 0, 40, 40))  # [T, C, 40, 40], [T, 40, 40]
    days = (data.cube.dates - data.first_day).astype(np.int64)
    seen, widths = {}, []
    for batch in data.predict_dataloader():
        number = int(batch["window"])
        counts = batch["mask"].sum(dim=1)
        assert batch["mask"].shape[1] == counts.max()  # no wider padding than needed
        assert torch.equal(batch["mask"], torch.arange(len(batch["mask"][0])) < counts[:, None])
        previous = seen.setdefault(number, [])
        assert all(c <= min(previous, default=99) for c in counts.tolist())  # longest first
        assert counts.tolist() == sorted(counts.tolist(), reverse=True)
        previous.extend(counts.tolist())
        widths.append(batch["mask"].shape[1])
        window = data.map_windows()[number]
        for k in (0, len(counts) - 1):
            row, col = divmod(int(batch["pixel"][k]), int(window.width))
            row, col = row + window.row_off, col + window.col_off
            dates = np.flatnonzero(valid[:, row, col])
            assert np.array_equal(batch["days"][k][batch["mask"][k]].numpy(), days[dates])
            ts = batch["ts"][k][batch["mask"][k]].numpy()
            np.testing.assert_array_equal(ts, values[dates, :, row, col])
    assert sum(len(v) for v in seen.values()) == valid.any(axis=0).sum()
    assert min(widths) < max(widths)  # the demo's clouds: batches of different widths


def test_cube_pixels_hold_out_windows_and_repeat_with_seed_and_epoch():
    data = pixel_module()
    train, val = data.train_dataloader(), data.val_dataloader()
    first, again = indices(train), indices(train)
    assert first == again  # the same epoch draws the same pixels in the same order
    data.trainer = SimpleNamespace(current_epoch=1, global_rank=0, world_size=1)
    assert indices(data.train_dataloader()) != first
    assert set(indices(val)) == set(indices(data.val_dataloader()))  # fixed validation
    assert not set(first) & set(indices(val))  # held-out windows
    other = pixel_module(seed=1)
    assert indices(other.val_dataloader()) != indices(val)  # another window held out
    fewer = pixel_module(pixels_per_epoch=200)
    assert len(fewer.train_dataloader()) == 4  # ceil(200 / 64)


def test_cube_pixels_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="single window of 256 pixels: lower window_size"):
        CubeDataModule(str(DEMO_CUBE), window_size=256).setup("fit")
    with pytest.raises(DataError, match="a cube has no labels to test with"):
        CubeDataModule(str(DEMO_CUBE)).setup("test")
    with pytest.raises(ConfigError, match=r"val_windows must be in \(0, 1\)"):
        CubeDataModule(str(DEMO_CUBE), val_windows=1.0)


@pytest.mark.slow
def test_autoencoder_pretrains_on_cube_pixels_from_the_command_line(tmp_path, run_cmap):
    args = [
        *("fit", "--config", str(REPO / "configs" / "pretrain.yaml")),
        *("--data", "cmap.data.CubeDataModule", "--data.cube", str(DEMO_CUBE)),
        *("--data.window_size", "16", "--data.batch_size", "256", "--trainer.max_epochs", "1"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path), "--seed_everything", "0"),
        *("--trainer.enable_progress_bar", "false", "--model.init_args.log_figures", "false"),
    ]
    result = run_cmap(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / "pretrain" / "version_0" / "checkpoints" / "best.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert state["hyper_parameters"]["bands"] == CubeDataModule(str(DEMO_CUBE)).bands
    tensors, spec = encoder_from_checkpoint(checkpoint)  # ready for `cmap extract`
    assert spec["class_path"].endswith("TransformerEncoder") and len(tensors) > 10


def test_cube_pixels_give_every_process_the_same_number_of_batches():
    counts, seen = [], []
    for rank in (0, 1):
        data = CubeDataModule(str(DEMO_CUBE), window_size=16, batch_size=64)
        data.trainer = SimpleNamespace(current_epoch=0, global_rank=rank, world_size=2)
        data.setup("fit")
        batches = list(data.train_dataloader())
        counts.append(len(batches))
        seen.append({i for batch in batches for i in batch["index"].tolist()})
    train_area = sum(int(w.width * w.height) for w in data.split_windows()["train"])
    assert counts == [-(-train_area // 128)] * 2  # half the epoch each
    assert not seen[0] & seen[1]  # disjoint shares of the windows


@pytest.mark.parametrize("source", ["cube", "unlabelled samples"])
def test_a_classifier_refuses_unlabelled_data_with_a_clear_message(source, synthetic_root):
    import pytorch_lightning as pl
    from torch import nn

    from cmap.data import SITSDataModule
    from cmap.models.decoders import MulticlassClassification
    from cmap.models.embeddings.bands import PixelEncoding
    from cmap.models.embeddings.positions import PositionalEncoding
    from cmap.models.encoders.transformer import TransformerEncoder

    if source == "cube":
        data = CubeDataModule(str(DEMO_CUBE), window_size=16, batch_size=64)
    else:
        data = SITSDataModule(str(synthetic_root), labelled=False, batch_size=16)
    encoder = TransformerEncoder(PositionalEncoding(16), PixelEncoding(10, [16]), d_model=16)
    head = MulticlassClassification(16, num_classes=2)
    model = Classifier(encoder, head, nn.CrossEntropyLoss(), classes=["a", "b"])
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False)
    with pytest.raises(ValueError, match="the Classifier needs labels to fit, but this"):
        trainer.fit(model, datamodule=data)


def test_each_file_keeps_its_own_nodata_unless_one_is_declared(tmp_path):
    """A date stored with nodata -9999 (the others 0): its -9999 pixels are missing, and its
    zeros are values; a declared nodata applies to every file."""
    folder = small_cube(tmp_path / "cube")
    data = np.full((2, 4, 5), 500, np.int16)
    data[:, 2, 3] = -9999
    data[:, 3, 4] = 0
    write_tif(folder / "S2_2021-03-31.tif", data, names=["B04", "B08"], nodata=-9999)
    values, valid = Cube(folder).read(Window(0, 0, 5, 4))
    assert not valid[3, 2, 3] and valid[3, 3, 4] and valid[3].sum() == 19
    assert not valid[0, 0, 0]  # the first files' own nodata, 0
    declared = Cube(folder, CubeOptions(nodata=-9999)).read(Window(0, 0, 5, 4))[1]
    assert declared[0, 0, 0] and not declared[3, 2, 3]


def test_a_date_stored_with_another_data_type_is_refused(tmp_path):
    folder = small_cube(tmp_path / "cube")
    write_tif(
        folder / "S2_2021-03-31.tif", np.full((2, 4, 5), 0.05, np.float32), names=["B04", "B08"]
    )
    with pytest.raises(
        DataError,
        match=r"S2_2021-03-31.tif: band B04 is stored as float32 but as int16 in S2_2021-03-01.tif",
    ):
        Cube(folder)


def test_a_season_outside_the_calendar_is_named():
    with pytest.raises(DataError, match=r"a season is the year it ends in \(2 to 9999\), got -5"):
        CubeDataModule(str(DEMO_CUBE), year=-5)


def test_quality_bands_keep_or_mask_dates_as_configured(tmp_path):
    """SCL keeps vegetation, bare soil, water and unclassified by default; another band needs
    its rule (without one it would mask nothing)."""
    folder = tmp_path / "cube"
    folder.mkdir()
    for t, date in enumerate(("2021-03-01", "2021-03-11")):
        data = np.full((3, 4, 5), 500, np.int16)
        data[2] = 4  # SCL: vegetation
        data[2, 1, 1] = 9 if t == 0 else 5  # cloud on the first date, bare soil on the second
        data[2, 2, 2] = 3  # cloud shadow on both
        write_tif(folder / f"S2_{date}.tif", data, names=["B04", "B08", "SCL"])
    _, valid = Cube(folder, CubeOptions(bands=["B04", "B08"], quality_band="SCL")).read(
        Window(0, 0, 5, 4)
    )
    assert valid[:, 1, 1].tolist() == [False, True] and valid[:, 2, 2].tolist() == [False, False]
    assert valid.sum() == 2 * 20 - 3
    masked = Cube(folder, CubeOptions(bands=["B04", "B08"], quality_band="SCL", quality_masked=[9]))
    assert masked.read(Window(0, 0, 5, 4))[1].sum() == 2 * 20 - 1  # only the cloud
    with pytest.raises(
        ConfigError, match="quality_band B08 needs quality_masked .* or quality_keep"
    ):
        Cube(folder, CubeOptions(bands=["B04"], quality_band="B08"))
    with pytest.raises(ConfigError, match="give quality_masked or quality_keep, not both"):
        Cube(
            folder,
            CubeOptions(bands=["B04"], quality_band="SCL", quality_masked=[9], quality_keep=[4]),
        )
