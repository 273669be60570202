"""The typed commands: `cmap samples` cuts a samples folder out of a cube."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cmap.cli import build
from cmap.main import main
from tests.helpers import DEMO_CUBE, REPO, small_cube


def test_samples_cut_from_a_cube_hold_the_cube_values(tmp_path, capsys):
    import pyarrow.parquet as pq

    from cmap.data.labels.samples import assign_splits

    folder = small_cube(tmp_path / "c")
    # pixel (row 1, col 1) of the 10 m grid from (500000, 4800000): centre (500015, 4799985)
    (tmp_path / "points.csv").write_text(
        "poi_id,x,y,label,field_id\na,500015,4799985,wheat,f1\nb,500025,4799985,maize,f1\n"
        "c,500005,4799965,maize,f2\n"
    )
    out = tmp_path / "samples"
    main(["samples", str(folder), str(out), "--points", str(tmp_path / "points.csv")])
    features = pq.read_table(out / "train/features.pq").to_pylist()
    features += pq.read_table(out / "val/features.pq").to_pylist()
    features += pq.read_table(out / "test/features.pq").to_pylist()
    a = [r for r in features if r["poi_id"] == "a"]
    assert [str(r["date"]) for r in a] == ["2021-03-01", "2021-03-21"]  # 03-11 invalid there
    assert [r["B04"] for r in a] == [6.0, 206.0] and [r["B08"] for r in a] == [26.0, 226.0]
    labels = {
        split: pq.read_table(out / split / "labels.pq").to_pydict()
        for split in ("train", "val", "test")
    }
    where = {p: s for s, t in labels.items() for p in t["poi_id"]}
    assert where["a"] == where["b"]  # one field, one split
    assert labels[where["a"]]["season"][0] == 2021
    meta = (out / "meta.yaml").read_text()
    assert "season_start: 11-01" in meta and "scale: 1.0" in meta

    # groups are never split, whatever the seed
    groups = np.repeat(np.arange(50), 7)
    for seed in range(5):
        split = assign_splits(groups.astype(str), [0.6, 0.2, 0.2], seed)
        assert all(len(set(split[groups == g])) == 1 for g in range(50))
        assert sorted(np.bincount(split[::7])) == [10, 10, 30]

    with pytest.raises(SystemExit):
        main(["samples", str(folder), str(out), "--points", str(tmp_path / "points.csv")])
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "far.csv").write_text("lon,lat,label\n2.0,45.0,wheat\n")
    with pytest.raises(SystemExit):
        main(["samples", str(folder), str(tmp_path / "x"), "--points", str(tmp_path / "far.csv")])
    assert "1 point(s) outside the cube" in capsys.readouterr().err


def test_unlabelled_cube_pixels_pretrain_an_autoencoder(tmp_path):
    out = tmp_path / "pixels"
    main(["samples", str(DEMO_CUBE), str(out), "--unlabelled", "300"])
    assert not (out / "train" / "labels.pq").exists()
    args = ["--config", str(REPO / "configs" / "pretrain.yaml"), "--data.init_args.root", str(out)]
    args += ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path / "logs")]
    cli = build(args)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert len(cli.datamodule.datasets["train"]) > 100
    scores = cli.trainer.callback_metrics
    bands = [float(v) for k, v in scores.items() if k.startswith("val/mse/")]
    assert len(bands) == 10 and all(math.isfinite(v) for v in bands)
    # the summary is the mean of the per-band errors on the hidden dates
    assert float(scores["val/mse"]) == pytest.approx(sum(bands) / len(bands), rel=1e-5)


# -- unlabelled pixels for self-supervised pretraining ------------------------------------


def test_extract_from_a_run_folder_takes_the_best_checkpoint(tmp_path, capsys):
    """A classifier run names its best checkpoint `epoch=E-f1=F.ckpt`; last.ckpt records it."""
    folder = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    spec = {"class_path": "cmap.models.TransformerEncoder", "init_args": {"d_model": 8}}
    best, last = folder / "epoch=3-f1=0.8000.ckpt", folder / "last.ckpt"
    for path, value in ((best, 1.0), (last, 2.0)):
        torch.save(
            {
                "state_dict": {"encoder.w": torch.full((2,), value)},
                "hyper_parameters": {"encoder": spec},
                "callbacks": {"ModelCheckpoint{'monitor': 'val/f1_macro'}": {
                    "best_model_path": str(best) if path == last else ""
                }},
            },
            path,
        )  # fmt: skip
    main(["extract", str(tmp_path / "lightning_logs"), "--output", str(tmp_path / "out")])
    assert capsys.readouterr().out.startswith(f"{best}: 1 encoder tensors")
    weights = load_file(str(tmp_path / "out" / "encoder.safetensors"))
    assert weights["w"].tolist() == [1.0, 1.0]
    # outputs get the user's usual permissions, like any file they write
    umask = os.umask(0)
    os.umask(umask)
    for name in ("encoder.safetensors", "encoder.yaml"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_samples_overwrite_replaces_only_what_cmap_wrote(tmp_path, capsys):
    """--overwrite never deletes inputs or folders cmap did not write (issue 19: the cube's
    parent given as output lost the cube)."""
    cube = small_cube(tmp_path / "work" / "cube")
    unlabelled = ["--unlabelled", "5"]

    def refused(out, *extra) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(["samples", str(cube), str(out), *unlabelled, *extra])
        assert exit_.value.code == 2
        return capsys.readouterr().err

    out = tmp_path / "samples"
    main(["samples", str(cube), str(out), *unlabelled])
    assert "already exists" in refused(out)
    (out / "train" / "features.pq").write_bytes(b"old")
    main(["samples", str(cube), str(out), *unlabelled, "--overwrite", "true"])
    assert (out / "train" / "features.pq").read_bytes()[:4] == b"PAR1"  # replaced
    before = sorted(p.name for p in cube.iterdir())
    for holder in (tmp_path / "work", cube):
        err = refused(holder, "--overwrite", "true")
        assert f"{holder}: holds the input {cube}; choose another output folder" in err
    assert sorted(p.name for p in cube.iterdir()) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    err = refused(mine, "--overwrite", "true")
    assert "exists and was not written by cmap, so it is not replaced" in err
    assert (mine / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert "was not written by cmap" in refused(a_file, "--overwrite", "true")
    assert a_file.read_text() == "keep me" and not (tmp_path / "a_file.partial").exists()


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("a,500015,4799985,wheat\na,500025,4799985,maize\n", "1 poi_id(s) given to several"),
        ("a,500015,4799985,\nb,500025,4799985,maize\n", "1 point(s) without a label"),
        ('a,500015,4799985,"  "\nb,500025,4799985,maize\n', "1 point(s) without a label"),
    ],
    ids=["duplicate_id", "empty_label", "blank_label"],
)
def test_points_that_would_write_an_invalid_samples_folder_are_refused(
    rows, problem, tmp_path, capsys
):
    folder = small_cube(tmp_path / "c")
    points = tmp_path / "points.csv"
    points.write_text("poi_id,x,y,label\n" + rows)
    with pytest.raises(SystemExit):
        main(["samples", str(folder), str(tmp_path / "out"), "--points", str(points)])
    assert f"points.csv: {problem}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
