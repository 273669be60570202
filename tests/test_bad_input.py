"""Catalogue of malformed inputs: each ends as one `cmap: error:` line naming the file or key
and the problem, with a non-zero exit code, never a traceback.

Runs `cmap.cli.main` in-process (as the `cmap` command does) on a small synthetic folder
copied per test and broken in one way.
"""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import save_file

from cmap.cli import build
from cmap.main import main
from tests.helpers import REPO

DEMO = str(REPO / "configs" / "demo.yaml")
FAST = ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]


@pytest.fixture
def root(synthetic_root, tmp_path):
    copy = tmp_path / "samples"
    shutil.copytree(synthetic_root, copy)
    return copy


def edit(root, split, name, **columns):
    """Rewrite one parquet file with columns dropped (None), replaced or renamed ((new, arr))."""
    path = root / split / name
    table = pq.read_table(path)
    for key, value in columns.items():
        if value is None:
            table = table.drop_columns([key])
        elif isinstance(value, tuple):
            new, array = value
            table = table.drop_columns([key]).append_column(new, array)
        else:
            table = table.set_column(table.column_names.index(key), key, value(table[key]))
    pq.write_table(table, path)


def first_row_set(value):
    def change(column):
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        values[0] = value
        return pa.array(values)

    return change


def duplicate_first_row(root, split, name):
    path = root / split / name
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), path)


@pytest.fixture
def fails(tmp_path, monkeypatch, capsys):
    """Run `cmap ARGS` in tmp_path; it must exit non-zero. Returns its stderr."""

    def run(*args) -> str:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr("sys.argv", ["cmap"])
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        assert exit_info.value.code not in (0, None)
        return capsys.readouterr().err

    return run


def error_of(err: str) -> str:
    """The error a refused run ends with; only cmap's own progress lines may come before."""
    start = err.find("cmap: error: ")
    assert start >= 0, err[-2000:]
    assert all(line.startswith("cmap: ") for line in err[:start].splitlines()), err[:start]
    return err[start:]


def fit(root, *extra) -> list[str]:
    return [str(a) for a in ("fit", "--config", DEMO, "--data.init_args.root", root, *extra)]


def break_samples(kind, root):  # noqa: C901 (one branch per malformed input)
    """Break `root` in one way; return extra command-line arguments."""
    if kind == "no_folder":
        shutil.rmtree(root)
    elif kind == "no_split":
        shutil.rmtree(root / "val")
    elif kind == "no_features":
        (root / "train" / "features.pq").unlink()
    elif kind == "no_labels":
        (root / "train" / "labels.pq").unlink()
    elif kind == "corrupted":
        (root / "val" / "features.pq").write_bytes(b"PAR1 truncated")
    elif kind == "missing_band":
        edit(root, "train", "features.pq", B8A=None)
    elif kind == "renamed_key":
        edit(
            root,
            "train",
            "features.pq",
            poi_id=("id", pq.read_table(root / "train" / "features.pq")["poi_id"]),
        )
    elif kind == "string_band":
        edit(root, "train", "features.pq", B04=lambda c: pa.array(["x"] * len(c)))
    elif kind == "string_dates":
        edit(root, "train", "features.pq", date=lambda c: pa.array(["2021-01-01"] * len(c)))
    elif kind == "infinite":
        edit(root, "train", "features.pq", B08=first_row_set(np.inf))
    elif kind == "duplicate_dates":
        duplicate_first_row(root, "train", "features.pq")
    elif kind == "duplicate_labels":
        duplicate_first_row(root, "train", "labels.pq")
    elif kind == "blank_label":
        blank = lambda col: pa.array(["  "] + col.to_pylist()[1:])  # noqa: E731
        edit(root, "train", "labels.pq", label=blank)
    elif kind == "string_season":
        edit(root, "train", "labels.pq", season=lambda c: pa.array([str(v) for v in c.to_pylist()]))
    elif kind == "labels_without_features":
        labels = pq.read_table(root / "val" / "labels.pq")
        extra = pa.table(
            {
                "poi_id": pa.array(["nowhere"], labels["poi_id"].type)
                if pa.types.is_string(labels["poi_id"].type)
                else pa.array([10**9]),
                "season": pa.array([2021], labels["season"].type),
                "label": pa.array(["BTH"], labels["label"].type),
            }
        )
        pq.write_table(pa.concat_tables([labels, extra]), root / "val" / "labels.pq")
    elif kind == "mapping_duplicate_code":
        (root / "label_mapping.yaml").write_text("ble_tendre: [BTH]\nmais: [BTH]\n")
    elif kind == "mapping_not_yaml":
        (root / "label_mapping.yaml").write_text("ble_tendre: [BTH\n")
    elif kind == "mapping_not_a_mapping":
        (root / "label_mapping.yaml").write_text("- BTH\n- MIS\n")
    elif kind == "meta_not_yaml":
        (root / "meta.yaml").write_text("bands: [B02\n")
    elif kind == "meta_not_a_mapping":
        (root / "meta.yaml").write_text("- B02\n")
    elif kind == "meta_folder":
        (root / "meta.yaml").unlink()
        (root / "meta.yaml").mkdir()
    elif kind == "mapping_folder":
        (root / "label_mapping.yaml").unlink()
        (root / "label_mapping.yaml").mkdir()
    elif kind in ("meta_alias_bomb", "mapping_alias_bomb"):
        lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        for level in "bcdefghijklmnop":
            lines.append(f"{level}: &{level} [{', '.join(['*' + chr(ord(level) - 1)] * 9)}]")
        name = "meta.yaml" if kind == "meta_alias_bomb" else "label_mapping.yaml"
        (root / name).write_text("\n".join(lines) + "\n")
    elif kind.startswith("meta_"):  # one setting of meta.yaml of the wrong kind
        meta = yaml.safe_load((root / "meta.yaml").read_text())
        key, value = META_EDITS[kind]
        meta[key] = value(meta) if callable(value) else value
        (root / "meta.yaml").write_text(yaml.safe_dump(meta))
    elif kind == "no_season_left":
        return ["--data.init_args.seasons", "[1999]"]
    elif kind == "bad_season_start":
        return ["--data.init_args.season_start", "November"]
    elif kind == "bad_fraction":
        return ["--data.init_args.fraction", "1.5"]
    elif kind in ARGUMENTS:
        name, value = ARGUMENTS[kind][0]
        return [f"--data.init_args.{name}", value]
    elif kind == "outside_range":
        edit(root, "train", "features.pq", B04=first_row_set(30000))  # reflectance 3.0
        return ["--data.init_args.value_range", "[-0.2, 1.6]"]
    elif kind == "bad_range":
        return ["--data.init_args.value_range", "[1.6, -0.2]"]
    elif kind == "no_temperatures":
        (root / "val" / "temperatures.pq").unlink()
        thermal = "--model.init_args.encoder.init_args.position_encoder"
        return [
            *("--data.init_args.positions", "gdd", thermal, "ThermalPositionalEncoding"),
            *(f"{thermal}.init_args.d_model", "64"),
        ]
    elif kind == "temperature_gap":
        table = pq.read_table(root / "train" / "temperatures.pq")
        keep = np.ones(len(table), bool)
        keep[100:110] = False  # ten days of the first point
        pq.write_table(table.filter(pa.array(keep)), root / "train" / "temperatures.pq")
        return ["--data.init_args.extra_channels", "[temperatures.temperature]"]
    return []


SAMPLES = {
    "no_folder": "samples folder not found",
    "no_split": "split folder 'val' not found",
    "no_features": "features.pq: file not found",
    "no_labels": "labels.pq: file not found",
    "corrupted": "cannot be read as parquet",
    "missing_band": "missing column(s) B8A",
    "renamed_key": "missing column(s) poi_id",
    "string_band": "band column 'B04' must be numeric, found string",
    "string_dates": "column 'date' must be a date or timestamp",
    "infinite": "infinite value",
    "duplicate_dates": "duplicate (poi_id, date) row(s)",
    "duplicate_labels": "duplicate (poi_id, season) row(s)",
    "string_season": "column 'season' must be an integer year",
    "blank_label": "train/labels.pq: column 'label' has 1 blank value(s)",
    "labels_without_features": "have no valid row",
    "mapping_duplicate_code": "code 'BTH' is listed under both 'ble_tendre' and 'mais'",
    "mapping_not_yaml": "label_mapping.yaml: is not valid YAML",
    "mapping_not_a_mapping": "must map each class name to a list of codes",
    "meta_not_yaml": "meta.yaml: is not valid YAML",
    "meta_not_a_mapping": "meta.yaml: must be a mapping",
    "meta_nodata_text": "meta.yaml: nodata must be a number, got 'none'",
    "meta_folder": "meta.yaml: is a folder, not a meta.yaml file",
    "mapping_folder": "label_mapping.yaml: is a folder, not a label mapping file",
    "meta_alias_bomb": "meta.yaml: is not valid YAML (more than 100 aliases (*name))",
    "mapping_alias_bomb": "label_mapping.yaml: is not valid YAML (more than 100 aliases",
    "meta_scale_text": "meta.yaml: scale must be a number, got 'abc'",
    "meta_scale_zero": "meta.yaml: scale must be positive, got 0",
    "meta_duplicate_band": "meta.yaml: bands names ['B02'] more than once",
    "meta_duplicate_class": "meta.yaml: classes names ['mais'] more than once",
    "meta_range_text": "meta.yaml: value_range must be [low, high], got '0 1'",
    "meta_season_start": "meta.yaml: season_start must be 'MM-DD', got '13-01'",
    "no_season_left": "no sample left after reading",
    "bad_season_start": "season_start must be 'MM-DD'",
    "bad_fraction": "fraction must be in (0, 1]",
    "outside_range": "1 value(s) outside the declared range [-0.2, 1.6] (after scale), e.g. 3",
    "bad_range": "value_range must be [low, high] with low < high, got [1.6, -0.2]",
    "no_temperatures": "val/temperatures.pq: extra table 'temperatures' not found",
    "temperature_gap": "gap(s) longer than 3 day(s) in the daily series, e.g. point",
}


# Data module arguments out of range: refused when the module is built, naming the argument.
ARGUMENTS = {
    "no_class_samples": (("max_per_class", "0"), "max_per_class must be at least 1"),
    "zero_batch": (("batch_size", "0"), 'batch_size must be at least 1, or "auto", got 0'),
    "negative_workers": (("num_workers", "-1"), "num_workers must be 0 or more, got -1"),
    "negative_noise": (("noise_std", "-1"), "noise_std must be 0 or more, got -1.0"),
    "full_dropout": (("date_dropout", "1"), "date_dropout must be in [0, 1), got 1.0"),
    "no_dates": (("max_dates", "0"), "max_dates must be at least 1"),
    "negative_shift": (("time_shift", "-3"), "time_shift must be 0 or more (days), got -3"),
    "over_balance": (("class_balance", "2"), "class_balance must be in [0, 1], got 2.0"),
    "huge_season": (("season_length", "4294967296"), "season_length must be 1 to 3660 days"),
}
SAMPLES.update({kind: message for kind, (_, message) in ARGUMENTS.items()})

META_EDITS = {
    "meta_nodata_text": ("nodata", "none"),
    "meta_scale_text": ("scale", "abc"),
    "meta_scale_zero": ("scale", 0),
    "meta_duplicate_band": ("bands", lambda meta: [*meta["bands"], "B02"]),
    "meta_duplicate_class": ("classes", lambda meta: [*meta["classes"], "mais"]),
    "meta_range_text": ("value_range", "0 1"),
    "meta_season_start": ("season_start", "13-01"),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_malformed_samples(kind, root, fails):
    extra = break_samples(kind, root)
    err = fails(*fit(root, *FAST, *extra))
    assert SAMPLES[kind] in error_of(err), err[-2000:]
    assert "Traceback" not in err


MODEL = {
    "hidden_mismatch": (
        ["--model.init_args.decoder.init_args.in_dim", "32"],
        "expects in_dim=32 features but the encoder (TransformerEncoder) produces 64",
    ),
    "d_model_mismatch": (
        ["--model.init_args.encoder.init_args.d_model", "48"],
        "bands_encoder (PixelEncoding) produces width 64 but d_model is 48",
    ),
    "heads_do_not_divide": (
        ["--model.init_args.encoder.init_args.n_heads", "5"],
        "n_heads (5) must be at least 1 and divide d_model (64)",
    ),
    "positions_beyond_max_len": (
        ["--model.init_args.encoder.init_args.position_encoder.init_args.max_len", "100"],
        "PositionalEncoding got positions in [",
    ),
    "class_weights_typo": (
        ["--model.init_args.classes_weights", "{ble_tendre: 1.0, maize: 2.0}"],
        "classes_weights names unknown class(es) ['maize']",
    ),
    "missing_encoder_weights": (
        ["--model.init_args.encoder_weights_path", "nowhere.safetensors"],
        "nowhere.safetensors: encoder weights file not found",
    ),
    "missing_checkpoint": (["--ckpt_path", "nowhere.ckpt"], "nowhere.ckpt"),
    "negative_class_weight": (
        ["--model.init_args.classes_weights", "{ble_tendre: -1.0}"],
        "classes_weights must be 0 or more, got {'ble_tendre': -1.0}",
    ),
    "no_heads": (
        ["--model.init_args.encoder.init_args.n_heads", "0"],
        "n_heads (0) must be at least 1 and divide d_model (64)",
    ),
    "dropout_above_one": (
        ["--model.init_args.encoder.init_args.dropout_p", "1.5"],
        "TransformerEncoder cannot be built: dropout probability has to be between 0 and 1",
    ),
    "negative_head_dropout": (
        ["--model.init_args.decoder.init_args.dropout_p", "-1"],
        "MulticlassClassification cannot be built: dropout probability has to be between 0",
    ),
}


@pytest.mark.parametrize("kind", sorted(MODEL))
def test_bad_model_settings(kind, root, fails):
    extra, message = MODEL[kind]
    err = fails(*fit(root, *FAST, *extra))
    assert message in err, err[-2000:]
    assert "Traceback" not in err


def test_encoder_weights_of_another_shape(root, tmp_path, fails):
    path = tmp_path / "encoder.safetensors"
    save_file({"embedding.bands_encoder.mlp.0.weight": torch.zeros(2, 2)}, str(path))
    err = fails(*fit(root, *FAST, "--model.init_args.encoder_weights_path", path))
    assert "do not fit the configured encoder" in err and "file (2, 2) vs model" in err


def test_unknown_class_path_and_wrong_type(root, fails):
    err = fails(*fit(root, "--model.init_args.criterion", "cmap.models.NoSuchLoss"))
    assert "NoSuchLoss" in err
    err = fails(*fit(root, "--data.init_args.batch_size", "many"))
    assert "batch_size" in err


def test_checkpoints_of_another_task_or_naming_foreign_classes_are_refused(
    checkpoint, tmp_path, fails, monkeypatch
):
    import torch

    state = torch.load(checkpoint, weights_only=True)
    state["hyper_parameters"]["_class_path"] = "cmap.tasks.AutoEncoder"
    other_task = tmp_path / "autoencoder.ckpt"
    torch.save(state, other_task)
    err = fails("test", "--config", DEMO, "--ckpt_path", other_task)
    assert "holds a cmap.tasks.AutoEncoder but the config builds a cmap.tasks.Classifier" in err
    state["hyper_parameters"]["_class_path"] = "cmap.tasks.Classifier"
    state["hyper_parameters"]["criterion"]["class_path"] = "evil.module.Payload"
    foreign = tmp_path / "foreign.ckpt"
    torch.save(state, foreign)
    err = fails("test", "--config", DEMO, "--ckpt_path", foreign)
    assert "names classes outside cmap, torch and Lightning (evil.module.Payload)" in err
    assert "CMAP_TRUST_CHECKPOINT_CLASSES=1" in err
    err = fails("test", "--config", DEMO, "--ckpt_path", tmp_path)
    assert f"{tmp_path}: is a folder; give a checkpoint file (.ckpt)" in err


def test_a_checkpoint_whose_weights_do_not_fit_its_own_model_is_refused(
    checkpoint, synthetic_root, tmp_path, fails
):
    import torch

    state = torch.load(checkpoint, weights_only=True)
    state["state_dict"]["decoder.linear.weight"] = torch.zeros(3, 3)
    edited = tmp_path / "edited.ckpt"
    torch.save(state, edited)
    err = fails(
        "test", "--config", DEMO, "--data.init_args.root", synthetic_root, "--ckpt_path", edited
    )
    assert f"{edited}: its weights do not fit the model its own settings build" in err
    assert "decoder.linear.weight" in err and "Traceback" not in err


class _Payload:
    def __reduce__(self):
        return (print, ("this would run",))


def test_a_checkpoint_holding_code_is_refused_without_advising_to_load_it(
    checkpoint, tmp_path, fails
):
    import torch

    state = torch.load(checkpoint, weights_only=True)
    state["extra"] = _Payload()
    payload = tmp_path / "payload.ckpt"
    torch.save(state, payload)
    err = fails("test", "--config", DEMO, "--ckpt_path", payload)
    assert f"{payload}: holds Python objects besides weights (print), which cmap never loads" in err
    assert "weights_only=False" not in err and "this would run" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_config_alias_bomb_is_refused(tmp_path, fails):
    config = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in "bcdefghijklmnop":
        lines.append(f"{level}: &{level} [{', '.join(['*' + chr(ord(level) - 1)] * 9)}]")
    config.write_text("\n".join(lines) + "\n")
    err = fails("fit", "--config", config)
    assert "bomb.yaml: is not valid YAML (more than 100 aliases (*name))" in err


def test_cmap_samples_arguments_out_of_range(tmp_path, fails):
    cube = REPO / "data" / "demo" / "cube"
    err = fails("samples", cube, tmp_path / "a", "--unlabelled", "-5")
    assert "unlabelled must be at least 1 pixel, got -5" in err
    err = fails("samples", cube, tmp_path / "b", "--unlabelled", "5", "--split", "[0, 0, 0]")
    assert "none negative and not all 0, got [0.0, 0.0, 0.0]" in err


@pytest.mark.parametrize("kind", ["truncated", "not_lightning", "not_pytorch"])
def test_unreadable_checkpoints(kind, root, tmp_path, fails):
    path = tmp_path / f"{kind}.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "epoch": 3}, path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "not_lightning":
        torch.save({"w": torch.zeros(3)}, path)
    else:
        path.write_text("not a checkpoint")
    err = fails("validate", "--config", DEMO, "--data.init_args.root", root, "--ckpt_path", path)
    expected = {
        "truncated": "is not a readable checkpoint (truncated",
        "not_lightning": "is not a Lightning checkpoint (it has no state_dict)",
        "not_pytorch": "is not a readable checkpoint",
    }[kind]
    assert f"cmap: error: {path}: {expected}" in err, err[-2000:]


@pytest.fixture(scope="module")
def checkpoint(synthetic_root, tmp_path_factory):
    """A one-epoch model trained on the synthetic folder."""
    work = tmp_path_factory.mktemp("trained")
    cli = build(fit(synthetic_root, *FAST, "--trainer.logger.init_args.save_dir", work)[1:])
    cli.trainer.fit(cli.model, cli.datamodule)
    return work / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


def test_outputs_are_never_overwritten_and_unwritable_places_are_named(
    checkpoint, synthetic_root, tmp_path, fails
):
    output = tmp_path / "predictions.parquet"
    output.write_bytes(b"a user's earlier result")
    predict = [
        "predict",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        "--ckpt_path",
        checkpoint,
        "--trainer.enable_progress_bar",
        "false",
    ]
    writer = [
        "--trainer.callbacks+=cmap.callbacks.PointPredictionWriter",
        "--trainer.callbacks.output",
    ]
    err = fails(*predict, *writer, output)
    assert f"{output}: already exists; choose another output or pass --overwrite true" in err
    assert output.read_bytes() == b"a user's earlier result"
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    err = fails(*predict, *writer, blocker / "out.parquet")
    assert f"cmap: error: {blocker / 'out.parquet'}: cannot be written" in err


def test_predict_output_and_overwrite_reach_the_writer(
    checkpoint, synthetic_root, tmp_path, monkeypatch, fails
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["cmap"])
    output = tmp_path / "mine.parquet"
    predict = ["predict", "--config", str(DEMO), "--data.init_args.root", str(synthetic_root)]
    predict += ["--ckpt_path", str(checkpoint), "--trainer.logger", "false"]
    main([*predict, "--output", str(output)])  # demo.yaml's PointPredictionWriter
    first = pq.read_table(output)
    assert len(first) > 0 and not (tmp_path / "predictions.parquet").exists()
    err = fails(*predict, "--output", output)
    assert f"{output}: already exists; choose another output or pass --overwrite true" in err
    output.write_bytes(b"stale")
    # A config without a writer gets one; --overwrite replaces the file.
    main([*predict, "--trainer.callbacks=[]", "--output", str(output), "--overwrite", "true"])
    assert pq.read_table(output).equals(first)
    err = fails("fit", "--config", DEMO, "--output", output)
    assert "unknown option --output" in err  # only predict writes predictions


def test_data_that_does_not_fit_a_checkpoint_is_refused_with_both_sides(
    checkpoint, synthetic_root, fails
):
    args = ["--config", DEMO, "--data.init_args.root", synthetic_root, "--ckpt_path", checkpoint]
    err = fails("validate", *args, "--data.init_args.bands", "[B02, B03, B04]")
    assert f"cmap: error: {checkpoint}: the model was trained with in_bands = 10" in err
    assert "the data gives 3" in err and "cmap extract" in err
    err = fails("validate", *args, "--data.init_args.classes", "[other, colza]")
    assert "the model was trained with num_classes = 7 but the data gives 2" in err


def test_bands_are_matched_to_the_checkpoint_by_name(
    checkpoint, synthetic_root, root, tmp_path, monkeypatch, capsys, fails
):
    """Same names in another order: put in the model's order (same predictions); other
    names: refused with both lists. Never only the count."""
    monkeypatch.chdir(tmp_path)
    bands = pq.read_schema(synthetic_root / "train" / "features.pq").names[2:]

    def predict(data_root, output, *extra):
        main(
            [
                *("predict", "--config", DEMO, "--data.init_args.root", str(data_root)),
                *("--ckpt_path", str(checkpoint), "--trainer.logger", "false"),
                *("--output", str(output), *extra),
            ]
        )
        return pq.read_table(output).to_pydict()

    expected = predict(synthetic_root, tmp_path / "a.parquet")
    reordered = f"[{', '.join(reversed(bands))}]"
    assert (
        predict(synthetic_root, tmp_path / "b.parquet", "--data.init_args.bands", reordered)
        == expected
    )
    assert f"put in the model's order {bands}" in capsys.readouterr().err
    for split in ("train", "val", "test"):  # a folder storing the bands in another order
        table = pq.read_table(root / split / "features.pq")
        pq.write_table(
            table.select(["poi_id", "date", *reversed(bands)]), root / split / "features.pq"
        )
    assert predict(root, tmp_path / "c.parquet") == expected
    for split in ("train", "val", "test"):  # another band under an old name
        table = pq.read_table(root / split / "features.pq")
        pq.write_table(
            table.rename_columns(["poi_id", "date", "B01", *table.column_names[3:]]),
            root / split / "features.pq",
        )
    renamed = f"[B01, {', '.join(list(reversed(bands))[1:])}]"
    err = fails(
        *("predict", "--config", DEMO, "--data.init_args.root", root, "--ckpt_path", checkpoint),
        *("--data.init_args.bands", renamed, "--output", tmp_path / "d.parquet"),
    )
    assert f"{checkpoint}: the model was trained with the bands {bands} but the data has" in err
    assert "'B01'" in err


def test_predict_keeps_the_checkpoint_classes(checkpoint, synthetic_root, tmp_path, monkeypatch):
    """Predictions need no labels: data declaring other classes does not change the model."""
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "predictions.parquet"
    main(
        [
            "predict",
            "--config",
            str(DEMO),
            "--data.init_args.root",
            str(synthetic_root),
            "--data.init_args.classes",
            "[other, colza]",
            "--ckpt_path",
            str(checkpoint),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.callbacks+=cmap.callbacks.PointPredictionWriter",
            "--trainer.callbacks.output",
            str(output),
        ]
    )
    columns = pq.read_schema(output).names
    assert "p_ble_dur" in columns and "p_tournesol" in columns


def break_cube(kind, cube):
    """Break a copy of the demo cube in one way; return extra command-line arguments."""
    import rasterio

    files = sorted(cube.glob("*.tif"))
    if kind == "unknown_band":
        return ["--data.init_args.bands", "[B02, B99]"]
    if kind == "outside_season":
        return ["--data.init_args.year", "2030"]
    if kind == "no_date":
        files[3].rename(cube / "quicklook.tif")
    elif kind == "unreadable":
        files[5].write_bytes(files[5].read_bytes()[:300])
    else:
        with rasterio.open(files[7]) as src:
            data, profile = src.read(), src.profile
        if kind == "other_crs":
            profile["crs"] = "EPSG:2154"
        elif kind == "shifted":
            profile["transform"] = profile["transform"] * profile["transform"].translation(3, 0)
        elif kind == "fewer_bands":
            data, profile["count"] = data[:9], 9
        with rasterio.open(files[7], "w", **profile) as dst:
            dst.write(data)
    return []


CUBES = {
    "unknown_band": "unknown band(s) ['B99']; the cube has B02, B03",
    "outside_season": "68 date(s) outside season 2030",
    "no_date": "quicklook.tif: no date (YYYY-MM-DD or YYYYMMDD) in the file name",
    "unreadable": "cannot be read as a GeoTIFF",
    "other_crs": "CRS EPSG:2154 differs from the first file's EPSG:32631",
    "shifted": "differs from the first file's (10.0, 0.0, 370000.0",
    "fewer_bands": "has 9 bands, the first file 10",
}


@pytest.mark.parametrize("kind", sorted(CUBES))
def test_malformed_cubes(kind, checkpoint, tmp_path, fails):
    cube = tmp_path / "cube"
    shutil.copytree(REPO / "data" / "demo" / "cube", cube)
    shutil.copy(REPO / "data" / "demo" / "meta.yaml", tmp_path / "meta.yaml")
    extra = break_cube(kind, cube)
    err = fails(
        "predict",
        "--config",
        REPO / "configs" / "predict_demo.yaml",
        "--data.init_args.cube",
        cube,
        "--ckpt_path",
        checkpoint,
        *extra,
    )
    assert CUBES[kind] in error_of(err), err[-2000:]
    assert "Traceback" not in err


def test_outputs_under_a_file_are_one_line_for_fit_predict_and_samples(
    checkpoint, synthetic_root, tmp_path, fails
):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    err = fails(
        *fit(synthetic_root, *FAST, "--trainer.logger.init_args.save_dir", blocker / "logs")
    )
    assert f"cannot be written there: {blocker} is a file" in err and "Traceback" not in err
    err = fails(
        "predict", "--config", REPO / "configs" / "predict_demo.yaml", "--ckpt_path", checkpoint,
        "--data.init_args.cube", REPO / "data" / "demo" / "cube", "--output", blocker / "map.tif",
    )  # fmt: skip
    assert f"{blocker / 'map.tif.lock'}: cannot be written (Not a directory)" in err
    err = fails("samples", REPO / "data" / "demo" / "cube", blocker / "s", "--unlabelled", "5")
    assert f"{blocker / 's'}: cannot be written there: {blocker} is a file" in err


def test_a_full_disk_is_one_line_and_leaves_no_partial_output(tmp_path, monkeypatch, fails):
    import errno

    def full_disk(table, where, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    monkeypatch.setattr(pq, "write_table", full_disk)
    out = tmp_path / "samples"
    err = fails("samples", REPO / "data" / "demo" / "cube", out, "--unlabelled", "5")
    assert "cmap: error: " in err and "features.pq: No space left on device" in err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "samples.partial").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "null"], "no data: the config needs a data section"),
        (["--data.init_args.bands", "[]"], "bands must be at least one band name"),
        (["--data.init_args.classes", "[]"], "classes must be at least one class name"),
        (["--trainer.max_epochs", "-5"], "`max_epochs` must be a non-negative integer or -1"),
    ],
    ids=["no_data", "no_bands", "no_classes", "negative_epochs"],
)
def test_settings_found_while_building_the_run_are_one_line(args, message, root, fails):
    err = fails(*fit(root, *FAST, *args))
    assert message in err and "Traceback" not in err


def test_a_thermal_model_on_calendar_days_is_refused_before_training(root, fails):
    """Positions are checked when the data is linked, not at the first batch."""
    thermal = ["--config", REPO / "configs" / "thermal.yaml", "--data.init_args.root", root]
    err = fails(*fit(root, *FAST, *thermal, "--data.init_args.positions", "days"))
    assert (
        "the model's position embedding ThermalPositionalEncoding takes growing degree days but "
        "the data gives calendar days (positions: days); set the data's positions: gdd"
    ) in err
    assert not (root.parent / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("poi_id,x,y,label\na,abc,4829900,mais\n", "column 'x' must hold a number on every row"),
        ("poi_id,lon,lat,label\na,200,95,mais\n", "lon must lie in [-180, 180] and lat in"),
    ],
    ids=["text_coordinate", "degrees_out_of_range"],
)
def test_points_tables_with_impossible_coordinates(table, message, tmp_path, fails):
    points = tmp_path / "points.csv"
    points.write_text(table)
    err = fails("samples", REPO / "data" / "demo" / "cube", tmp_path / "s", "--points", points)
    assert f"points.csv: {message}" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def real_inputs(tmp_path_factory):
    """A small NetCDF stack (B04 at 10 m, B11 and SCL at 20 m), its label raster, parcels,
    weather and a STAC catalogue of the demo cube, for breaking one at a time."""
    import geopandas as gpd
    from rasterio.features import shapes
    from rasterio.transform import from_origin
    from shapely.geometry import shape

    from tests.data.labels.test_label_sources import fields, write_labels
    from tests.data.test_weather import DAYS, write_weather
    from tests.helpers import DEMO_CUBE, stac_catalogue, write_netcdf

    root = tmp_path_factory.mktemp("real_inputs")
    fine, coarse = (
        from_origin(500_000.0, 4_800_000.0, 10.0, 10.0),
        from_origin(500_000.0, 4_800_000.0, 20.0, 20.0),
    )
    days = ["2021-02-10", "2021-04-10", "2021-06-10"]
    s2 = {"_FillValue": 0, "scale_factor": 1e-4}
    values = np.arange(3 * 144, dtype=np.uint16).reshape(3, 12, 12) + 100
    (root / "stack").mkdir()
    write_netcdf(root / "stack" / "S2_10m.nc", {"B04": values}, days, fine, attrs={"B04": s2})
    scl = np.full((3, 6, 6), 4, np.uint8)
    coarse_bands = {"B11": values[:, :6, :6], "SCL": scl}
    write_netcdf(root / "stack" / "S2_20m.nc", coarse_bands, days, coarse, attrs={"B11": s2})
    (root / "shifted").mkdir()
    shutil.copy(root / "stack" / "S2_10m.nc", root / "shifted" / "S2_10m.nc")
    moved = from_origin(500_200.0, 4_800_000.0, 20.0, 20.0)
    write_netcdf(root / "shifted" / "S2_20m.nc", {"B11": values[:, :6, :6]}, days, moved)
    write_labels(root / "labels.nc", fields())
    patches = shapes(fields().astype(np.int32), mask=fields() != 0, transform=fine)
    rows = [(shape(g), str(int(v))) for g, v in patches]
    frame = gpd.GeoDataFrame(
        {"crop": [v for _, v in rows]}, geometry=[g for g, _ in rows], crs="EPSG:32631"
    )
    frame.to_file(root / "parcels.gpkg")
    write_weather(root / "weather_short.nc", np.full((60, 2, 2), 280.0), DAYS[:60])
    catalogue = stac_catalogue(DEMO_CUBE, root / "stac", ["B04"])
    (root / "stac" / "2020-11-04_B04.tif").unlink()  # the demo cube's first acquisition
    return root, catalogue


REAL_INPUTS = {
    "vector_without_label_column": (
        ["stack", "--vector", "parcels.gpkg", "--label_column", "code", "--data", "two_bands.yaml"],
        "parcels.gpkg: has no column 'code'; it has crop",
    ),
    "polygons_in_no_crs": (
        ["stack", "--vector", "nocrs.gpkg", "--label_column", "crop", "--data", "two_bands.yaml"],
        "nocrs.gpkg: has no CRS",
    ),
    "catalogue_asset_missing": (
        ["CATALOGUE", "--unlabelled", "10", "--data", "stac.yaml"],
        "_B04.tif: asset 'B04' of item 2020-11-04 (band B04) not found",
    ),
    "grids_that_cannot_be_aligned": (
        ["shifted", "--unlabelled", "10", "--data", "two_bands.yaml"],
        "S2_20m.nc: bands ['B11'] cover",
    ),
    "quality_class_unknown": (
        ["stack", "--unlabelled", "10", "--data", "scl_typo.yaml"],
        "quality values [13] are no class of Sentinel-2's scene classification",
    ),
    "weather_short_of_the_season": (
        [
            "stack",
            "--label_raster",
            "labels.nc",
            "--weather",
            "weather_short.nc",
            "--data",
            "two_bands.yaml",
        ],
        "weather_short.nc: holds daily temperatures from 2020-11-01 to 2020-12-30, but the "
        "season needs 2020-11-01 to 2021-06-10",
    ),
}


@pytest.mark.parametrize("kind", sorted(REAL_INPUTS))
@pytest.mark.filterwarnings("ignore:'crs' was not provided")  # the file made without one
def test_malformed_real_inputs(kind, real_inputs, tmp_path, fails):
    root, catalogue = real_inputs
    (tmp_path / "stac.yaml").write_text("bands: [B04]\nscale: 0.0001\n")
    (tmp_path / "two_bands.yaml").write_text("bands: [B04, B11]\n")
    (tmp_path / "scl_typo.yaml").write_text(
        "bands: [B04, B11]\nquality_band: SCL\nquality_keep: [4, 5, 13]\n"
    )
    if kind == "polygons_in_no_crs":
        import geopandas as gpd

        frame = gpd.read_file(root / "parcels.gpkg")
        frame.set_crs(None, allow_override=True).to_file(tmp_path / "nocrs.gpkg")
    args, message = REAL_INPUTS[kind]
    where = {"CATALOGUE": catalogue, "stack": root / "stack", "shifted": root / "shifted"}

    def place(arg):
        found = [folder / arg for folder in (tmp_path, root) if (folder / arg).exists()]
        return where.get(arg) or (found[0] if found else arg)

    paths = [place(a) for a in args]
    err = fails("samples", paths[0], tmp_path / "out", *paths[1:])
    assert message in error_of(err), err[-2000:]
    assert "Traceback" not in err and not (tmp_path / "out").exists()


MAP_PRODUCTS = {
    "reference_labels_not_in_the_map": (
        ["assess", "{map}", "{codes}"],
        "cube_points.csv: reference labels not among the map's classes: BOP, BTH",
    ),
    "reference_points_outside_the_map": (
        ["assess", "{map}", "{far_points}"],
        "far.csv: 1 point(s) outside the map, e.g. p000000",
    ),
    "parcels_outside_the_map": (
        ["parcels", "{probabilities}", "{far_parcels}"],
        "far.gpkg: no parcel overlaps the map",
    ),
    "parcels_with_a_column_cmap_writes": (
        ["parcels", "{probabilities}", "{clash}"],
        "clash.gpkg: has a column 'margin', which cmap",
    ),
    "class_map_to_smooth": (["smooth", "{map}"], "map.tif: is not a probabilities file"),
    "class_map_to_parcels": (
        ["parcels", "{map}", "{far_parcels}"],
        "map.tif: is not a probabilities file",
    ),
    "class_map_to_uncertainty": (["uncertainty", "{map}"], "map.tif: is not a probabilities"),
    "probabilities_to_assess": (
        ["assess", "{probabilities}", "{codes}"],
        "p_probabilities.tif: is not a cmap class map",
    ),
    "class_map_to_priors": (["priors", "{map}"], "map.tif: is not a probabilities file"),
    "probabilities_without_an_output_prior": (
        ["priors", "{probabilities}"],
        "p_probabilities.tif: records no output prior (OUTPUT_PRIOR)",
    ),
    "a_prior_of_the_wrong_length": (
        ["priors", "{probabilities}", "--prior", "[1, 2, 3]"],
        "prior needs 2 non-negative values (classes ['a', 'b']), got [1.0, 2.0, 3.0]",
    ),
    "a_prior_naming_an_unknown_class": (
        ["priors", "{probabilities}", "--prior", "{{a: 1, maize: 2}}"],
        "prior names unknown class(es) ['maize']; the classes: ['a', 'b']",
    ),
    "points_table_without_probabilities": (
        ["priors", "{points}"],
        "points.parquet: holds no predictions with `p_<class>` columns",
    ),
}


@pytest.mark.parametrize("kind", sorted(MAP_PRODUCTS))
def test_malformed_map_product_inputs(kind, tmp_path, fails):
    geopandas = pytest.importorskip("geopandas")
    from shapely.geometry import box

    from tests.helpers import write_probabilities

    demo = REPO / "data" / "demo"
    files = {"map": tmp_path / "map.tif", "codes": demo / "cube_points.csv"}
    shutil.copy(demo / "cube_truth.tif", files["map"])
    files["probabilities"] = write_probabilities(
        tmp_path / "p_probabilities.tif", np.full((2, 4, 4), 0.5), classes=["a", "b"]
    )
    files["far_points"] = tmp_path / "far.csv"
    files["far_points"].write_text("x,y,label\n100000,100000,other\n")
    files["far_parcels"] = tmp_path / "far.gpkg"
    far = geopandas.GeoDataFrame({"id": [1]}, geometry=[box(0, 0, 50, 50)], crs="EPSG:32631")
    far.to_file(files["far_parcels"])
    files["points"] = tmp_path / "points.parquet"
    pq.write_table(pa.table({"poi_id": ["p1"], "label": ["a"]}), files["points"])
    files["clash"] = tmp_path / "clash.gpkg"
    far.assign(margin=1.0).to_file(files["clash"])
    args, message = MAP_PRODUCTS[kind]
    err = fails(*(a.format(**files) for a in args))
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line
