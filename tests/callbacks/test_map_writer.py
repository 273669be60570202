"""Crop maps written while `cmap predict` runs over a cube: values, resume, quicklook."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.pixels import pixel_series
from cmap.data.cubes.source import CubeOptions
from cmap.io.maps import NODATA, read_classes
from cmap.main import main
from cmap.tasks.classifier import Classifier
from tests.helpers import DEMO_CUBE, REPO, cube_as_netcdf


def predict_args(checkpoint, output, *extra):
    return [
        *("predict", "--config", str(REPO / "configs" / "predict_demo.yaml")),
        *("--data.init_args.cube", str(DEMO_CUBE), "--ckpt_path", str(checkpoint)),
        *("--trainer.callbacks.output", str(output), "--trainer.enable_progress_bar", "false"),
        *map(str, extra),
    ]


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.tags(), src.colormap(1) if src.count == 1 else None


def test_predicted_map_matches_the_model_pixel_by_pixel(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "map.tif"
    main(predict_args(checkpoint, output))
    classes, profile, tags, colours = read(output)
    cube = Cube(DEMO_CUBE, CubeOptions(scale=1e-4))
    assert (profile["width"], profile["height"], profile["crs"]) == (40, 40, cube.crs)
    assert profile["transform"] == cube.transform and profile["dtype"] == "uint8"
    assert profile["nodata"] == NODATA and profile["tiled"]
    model = Classifier.load_from_checkpoint(checkpoint).eval()
    assert read_classes(output) == model.classes and tags["CLASS_2"] == "ble_dur"
    assert len({colours[k] for k in range(len(model.classes))}) == len(model.classes)
    assert colours[5] == (255, 211, 0, 255)  # mais in the Cropland Data Layer's yellow
    assert tags["SEASON"] == "2021" and tags["SEASON_DATES"] == "2020-11-01/2021-11-30"
    assert tags["MODEL"] == "last.ckpt" and tags["SOURCE"] == str(DEMO_CUBE)

    # the same pixels through the model directly: identical classes, nodata elsewhere
    values, valid = cube.read(Window(0, 0, 40, 40))
    series = pixel_series(values, valid)
    first_day = np.datetime64("2020-11-01")
    days = (cube.dates - first_day).astype(np.int64)[series["date"]] * series["mask"]
    with torch.no_grad():
        logits = model(
            {
                "ts": torch.from_numpy(series["ts"]),
                "positions": torch.from_numpy(days),
                "mask": torch.from_numpy(series["mask"]),
            }
        )
    expected = np.full(1600, NODATA, np.uint8)
    expected[series["pixel"]] = logits.argmax(-1).numpy()
    assert np.array_equal(classes[0].ravel(), expected)
    assert (classes[0].ravel() == NODATA).sum() == 1600 - len(series["pixel"]) > 0

    probabilities, p_profile, p_tags, _ = read(tmp_path / "map_probabilities.tif")
    assert probabilities.shape == (7, 40, 40) and p_profile["dtype"] == "uint8"
    inside = classes[0] != NODATA
    assert np.array_equal(probabilities.argmax(0)[inside], classes[0][inside])
    with rasterio.open(tmp_path / "map_probabilities.tif") as src:  # nodata: the mask band
        assert np.array_equal(src.read_masks(1) == 0, ~inside)
        assert src.read(masked=True).mask[:, ~inside].all()
    prior = [float(v) for v in p_tags["OUTPUT_PRIOR"].split(",")]  # for `cmap priors`
    assert np.allclose(prior, model.output_prior.numpy(), atol=1e-6) and model.output_prior.any()
    main(["priors", str(tmp_path / "map_probabilities.tif")])
    adjusted, _, a_tags, _ = read(tmp_path / "map_adjusted.tif")
    assert np.array_equal(adjusted[0] == NODATA, ~inside) and "EM" in a_tags["PRIOR_SHIFT"]
    main(["quicklook", str(tmp_path / "map_probabilities.tif")])
    main(["uncertainty", str(tmp_path / "map_probabilities.tif")])
    with rasterio.open(tmp_path / "map_uncertainty.tif") as src:
        uncertain = src.read()
    assert np.array_equal(np.isnan(uncertain[2]), ~inside)  # nodata where the map has none
    top = probabilities.max(0)[inside] / probabilities.sum(0)[inside]
    assert np.allclose(uncertain[2][inside], 1 - top, atol=1e-6)
    assert (tmp_path / "map_probabilities.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "map.png").stat().st_size > 0
    assert not (tmp_path / "map.tif.parts").exists()
    for name in ("map", "map_probabilities", "map_adjusted", "map_uncertainty"):
        with rasterio.open(tmp_path / f"{name}.tif") as src:  # overviews: tests/io/test_maps.py
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG", name

    # a finished map is never overwritten silently; with overwrite it is replaced
    before = output.read_bytes()
    with pytest.raises(SystemExit):
        main(predict_args(checkpoint, output))
    assert output.read_bytes() == before
    main(predict_args(checkpoint, output, "--trainer.callbacks.overwrite", "true"))
    assert np.array_equal(read(output)[0], classes)


@pytest.mark.slow
def test_a_killed_prediction_resumes_to_the_same_map(checkpoint, tmp_path, run_cmap):
    def run(output, *extra):
        return run_cmap(*predict_args(checkpoint, output, *extra), cwd=tmp_path)

    reference = tmp_path / "reference.tif"
    assert run(reference).returncode == 0
    output = tmp_path / "map.tif"
    killed = run(
        output,
        "--trainer.callbacks+=tests.helpers.KillAtPredictBatch",
        "--trainer.callbacks.batch",
        5,
    )
    assert killed.returncode == -9
    parts = sorted(p.name for p in (tmp_path / "map.tif.parts").iterdir())
    assert parts == ["settings.json"] + [f"w{i}.npz" for i in range(5)]  # done before the kill
    for leftover in ("w7.npz.partial", "w8.npz.partial.npz"):  # writes cut short
        (tmp_path / "map.tif.parts" / leftover).write_bytes(b"PK\x03")
    resumed = run(output)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr and "5 of 9 windows already written" in resumed.stderr
    for name in ("{}.tif", "{}_probabilities.tif"):
        new, new_profile, new_tags, _ = read(tmp_path / name.format("map"))
        old, old_profile, old_tags, _ = read(tmp_path / name.format("reference"))
        assert np.array_equal(new, old) and new_profile == old_profile and new_tags == old_tags


def test_quicklook_command(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(predict_args(checkpoint, tmp_path / "m.tif", "--trainer.callbacks.quicklook", "false"))
    assert not (tmp_path / "m.png").exists()
    main(["quicklook", str(tmp_path / "m.tif"), "--output", str(tmp_path / "look.png")])
    assert (tmp_path / "look.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["quicklook", str(tmp_path / "m.tif"), "--colours", str(tmp_path / "none.yaml")])
    assert "none.yaml: colours file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quicklook", str(tmp_path / "nothing.tif")])
    assert "cannot be read as a cmap class map" in capsys.readouterr().err


def test_an_existing_map_is_refused_before_the_run_writes_anything(
    checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "map.tif").write_bytes(b"a user's earlier map")
    with pytest.raises(SystemExit):
        main(predict_args(checkpoint, tmp_path / "map.tif"))
    assert "map.tif: already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]  # no log folder


def test_a_colours_file_replaces_the_palette_of_the_classes_it_names(
    checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    colours = tmp_path / "colours.yaml"
    colours.write_text('mais: "#102030"\nother: [1, 2, 3]\n')
    main(predict_args(checkpoint, tmp_path / "m.tif", "--trainer.callbacks.colours", colours))
    table = read(tmp_path / "m.tif")[3]
    assert table[5] == (16, 32, 48, 255) and table[0] == (1, 2, 3, 255)
    assert table[4] == (209, 255, 0, 255)  # colza keeps the default
    colours.write_text("mias: [1, 2, 3]\n")
    with pytest.raises(SystemExit):
        main(predict_args(checkpoint, tmp_path / "n.tif", "--trainer.callbacks.colours", colours))
    err = capsys.readouterr().err
    assert "colours.yaml: class 'mias' is not one of the map's classes" in err


def test_quicklook_shows_where_and_what_the_map_is(checkpoint, tmp_path, monkeypatch):
    from cmap.io.maps import read_overview
    from cmap.reports.figures import map_figure

    monkeypatch.chdir(tmp_path)
    main(predict_args(checkpoint, tmp_path / "m.tif", "--trainer.callbacks.quicklook", "false"))
    view = read_overview(tmp_path / "m.tif", 2048)
    assert view.crs.to_string() == "EPSG:32631" and view.tags["MODEL"] == "last.ckpt"
    left, bottom, right, top = view.bounds
    assert (right - left, top - bottom) == (400.0, 400.0)  # 40 pixels of 10 m
    place = {"bounds": view.bounds, "crs": "EPSG:32631", "metres": True}
    figure = map_figure(view.values, view.names, view.colours, "t", place)
    ax = figure.axes[0]
    assert ax.get_xlim() == (left, right) and "EPSG:32631" in ax.get_xlabel()
    bars = [a for a in ax.artists if type(a).__name__ == "AnchoredSizeBar"]
    assert len(bars) == 1  # a scale bar: 50 m, the largest 1-2-5 length under a fifth
    assert [t.get_text() for t in bars[0].txt_label.get_children()] == ["50 m"]


def test_windows_without_a_valid_pixel_are_written_as_nodata(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Real tiles have windows outside their footprint: they are mapped as nodata and
    counted, and a cube with no valid pixel at all says so."""
    import shutil

    monkeypatch.chdir(tmp_path)
    cube = tmp_path / "cube"
    shutil.copytree(DEMO_CUBE, cube)
    for path in sorted(cube.glob("*.tif")):
        with rasterio.open(path, "r+") as dst:
            data = dst.read()
            data[:, :16, :16] = 0  # window 0 (16 x 16) is outside the footprint
            dst.write(data)

    def predict(output):
        args = predict_args(checkpoint, output, "--data.init_args.cube", cube)
        main([*args, "--trainer.callbacks.probabilities", "false"])
        return read(output)[0][0], capsys.readouterr().err

    classes, err = predict(tmp_path / "holes.tif")
    assert (classes[:16, :16] == NODATA).all() and (classes[16:, 16:] != NODATA).any()
    assert "1 of 9 windows had no valid pixel (nodata)" in err
    for path in sorted(cube.glob("*.tif")):
        with rasterio.open(path, "r+") as dst:
            dst.write(np.zeros((dst.count, dst.height, dst.width), np.int16))
    classes, err = predict(tmp_path / "empty.tif")
    assert (classes == NODATA).all() and "empty.tif holds no valid pixel" in err


def test_unfinished_parts_are_continued_only_with_the_same_settings_and_weights(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Parts of another window size or other weights would make a map of two maps."""
    from tests.helpers import Stopped

    monkeypatch.chdir(tmp_path)
    output = tmp_path / "map.tif"
    with pytest.raises(Stopped):
        main(
            predict_args(
                checkpoint,
                output,
                *(
                    "--trainer.callbacks+=tests.helpers.StopAtPredictBatch",
                    "--trainer.callbacks.batch",
                    4,
                ),
            )
        )
    parts = sorted(p.name for p in (tmp_path / "map.tif.parts").glob("w*.npz"))
    assert len(parts) == 4
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(predict_args(checkpoint, output, "--data.init_args.window_size", 32))
    err = capsys.readouterr().err
    assert "map.tif.parts: holds windows of another map (other window size)" in err
    other = tmp_path / "other.ckpt"  # the same model with other weights
    state = torch.load(checkpoint, weights_only=True)
    state["state_dict"]["decoder.linear.bias"] += 1.0
    torch.save(state, other)
    with pytest.raises(SystemExit):
        main(predict_args(other, output))
    assert "holds windows predicted by other model weights" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "map.tif.parts").glob("w*.npz")) == parts
    # the same settings and weights finish it; with --overwrite another model starts over
    main(predict_args(checkpoint, output))
    main(predict_args(checkpoint, tmp_path / "fresh.tif"))
    assert np.array_equal(read(output)[0], read(tmp_path / "fresh.tif")[0])
    with pytest.raises(Stopped):
        main(
            predict_args(
                checkpoint,
                tmp_path / "again.tif",
                *(
                    "--trainer.callbacks+=tests.helpers.StopAtPredictBatch",
                    "--trainer.callbacks.batch",
                    4,
                ),
            )
        )
    main(predict_args(other, tmp_path / "again.tif", "--trainer.callbacks.overwrite", "true"))
    main(predict_args(other, tmp_path / "other.tif"))
    assert np.array_equal(read(tmp_path / "again.tif")[0], read(tmp_path / "other.tif")[0])


def test_a_map_being_written_by_another_run_is_refused(checkpoint, tmp_path, monkeypatch, capsys):
    import os
    import socket

    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "map.tif.lock"
    lock.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live run's
    with pytest.raises(SystemExit):
        main(predict_args(checkpoint, tmp_path / "map.tif"))
    assert "map.tif.lock: another run" in capsys.readouterr().err
    assert not (tmp_path / "map.tif").exists()
    lock.unlink()
    main(predict_args(checkpoint, tmp_path / "map.tif"))
    assert (tmp_path / "map.tif").exists() and not lock.exists()


def test_a_netcdf_copy_of_the_cube_gives_the_same_map(checkpoint, tmp_path, monkeypatch):
    """The cube read from one NetCDF file (bands, scale and fill value from its attributes)
    maps exactly as the GeoTIFF cube it was written from."""
    monkeypatch.chdir(tmp_path)
    stack = cube_as_netcdf(DEMO_CUBE, tmp_path / "cube.nc")
    no_probabilities = ["--trainer.callbacks.probabilities", "false"]
    main(predict_args(checkpoint, tmp_path / "a.tif", *no_probabilities))
    main(
        predict_args(
            checkpoint, tmp_path / "b.tif", "--data.init_args.cube", stack, *no_probabilities
        )
    )
    (a, profile_a, _, _), (b, profile_b, tags, _) = (
        read(tmp_path / "a.tif"),
        read(tmp_path / "b.tif"),
    )
    assert np.array_equal(a, b) and (a != NODATA).sum() > 1000
    assert profile_a["transform"] == profile_b["transform"] and profile_a["crs"] == profile_b["crs"]
    assert tags["SOURCE"] == str(tmp_path) and tags["SEASON"] == "2021"
    # stopped after 4 of its 9 windows, the NetCDF map resumes to the same file
    from tests.helpers import Stopped

    stop = ["--trainer.callbacks+=tests.helpers.StopAtPredictBatch", "--trainer.callbacks.batch", 4]
    resumed = [*no_probabilities, "--data.init_args.cube", stack]
    with pytest.raises(Stopped):
        main(predict_args(checkpoint, tmp_path / "c.tif", *resumed, *stop))
    assert len(list((tmp_path / "c.tif.parts").glob("w*.npz"))) == 4
    main(predict_args(checkpoint, tmp_path / "c.tif", *resumed))
    assert np.array_equal(read(tmp_path / "c.tif")[0], b)


def test_a_cube_storing_its_bands_in_another_order_gives_the_same_map(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Band names, not positions, decide what the model reads (issue 19: reversed bands gave
    a map with most pixels wrong and exit 0)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    cube = tmp_path / "reversed"
    shutil.copytree(DEMO_CUBE, cube)
    for path in sorted(cube.glob("*.tif")):
        with rasterio.open(path) as src:
            data, profile, names = src.read(), src.profile, list(src.descriptions)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data[::-1])
            dst.descriptions = tuple(reversed(names))
    (cube / "meta.yaml").write_text("scale: 0.0001\nnodata: 0\n")  # no bands: the files say
    no_bands = ["--data.init_args.bands", "null", "--trainer.callbacks.probabilities", "false"]
    main(predict_args(checkpoint, tmp_path / "a.tif", *no_bands))
    main(predict_args(checkpoint, tmp_path / "b.tif", "--data.init_args.cube", cube, *no_bands))
    assert "put in the model's order" in capsys.readouterr().err
    assert np.array_equal(read(tmp_path / "a.tif")[0], read(tmp_path / "b.tif")[0])


def test_a_full_disk_while_mapping_is_one_line_and_the_rerun_finishes(
    checkpoint, tmp_path, monkeypatch, capsys
):
    import errno

    monkeypatch.chdir(tmp_path)
    real, calls = np.savez, []

    def fills_up(file, **arrays):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "map.tif.parts"))
        real(file, **arrays)

    monkeypatch.setattr(np, "savez", fills_up)
    with pytest.raises(SystemExit) as exit_:
        main(predict_args(checkpoint, tmp_path / "map.tif"))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "No space left on device (what was finished is kept" in err
    assert "Traceback" not in err
    monkeypatch.setattr(np, "savez", real)
    assert len(list((tmp_path / "map.tif.parts").glob("w*.npz"))) == 2  # kept
    main(predict_args(checkpoint, tmp_path / "map.tif"))
    assert "resuming" in capsys.readouterr().err
    main(predict_args(checkpoint, tmp_path / "fresh.tif"))
    assert np.array_equal(read(tmp_path / "map.tif")[0], read(tmp_path / "fresh.tif")[0])
    assert not (tmp_path / "map.tif.lock").exists()
