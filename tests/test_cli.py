"""The `cmap` command end to end, in subprocesses as a user runs it."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import DEMO, REPO, SHARED, needs_shared

pytestmark = pytest.mark.slow  # subprocesses or several processes

TINY = [
    "--trainer.max_epochs",
    "2",
    "--trainer.enable_progress_bar",
    "false",
    "--model.init_args.encoder.init_args.n_layers",
    "1",
    "--data.init_args.batch_size",
    "128",
]


def last_checkpoint(work):
    return work / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root, run_cmap):
    """A 2-epoch `cmap fit` of the demo config on the small synthetic folder."""
    work = tmp_path_factory.mktemp("run")
    result = run_cmap(
        "fit", "--config", DEMO, "--data.init_args.root", synthetic_root, *TINY, cwd=work
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_fit_writes_checkpoints_logs_and_config(trained, synthetic_root):
    version = trained / "lightning_logs" / "version_0"
    checkpoints = sorted(p.name for p in (version / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(p.startswith("epoch=") for p in checkpoints)
    assert list(version.glob("events.out.tfevents.*"))
    assert (version / "config.yaml").exists()
    info = yaml.safe_load((version / "run_info.yaml").read_text())
    assert info["packages"]["torch"] and info["stage"] == "fit"
    assert len(info["data"]["fingerprint"]) == 16 and "train/features.pq" in info["data"]["files"]
    hparams = yaml.safe_load((version / "hparams.yaml").read_text())
    assert hparams["encoder"]["init_args"]["bands_encoder"]["init_args"]["in_bands"] == 10
    assert hparams["classes"][:2] == ["other", "ble_tendre"]  # linked from the data

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(version)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss_epoch",
        "val/loss",
        "val/f1_macro",
        "val/kappa",
        "val/accuracy",
        "val/f1/ble_dur",
        "lr-AdamW",
    } <= tags
    assert len(events.Scalars("val/f1_macro")) == 2


def test_validate_from_checkpoint_prints_metrics(trained, synthetic_root, run_cmap):
    ckpt = last_checkpoint(trained)
    result = run_cmap(
        "validate",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        "--ckpt_path",
        ckpt,
        "--trainer.enable_progress_bar",
        "false",
        cwd=trained,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(
        line.split()
        for line in result.stdout.splitlines()
        if line.split()[:1] in (["accuracy"], ["f1_macro"], ["kappa"])
    )
    assert set(lines) == {"accuracy", "f1_macro", "kappa"}
    assert all(0 <= float(v) <= 1 for v in lines.values())


def test_checkpoint_hyperparameters_override_the_config_model(
    trained, synthetic_root, tmp_path, run_cmap
):
    """`--ckpt_path` restores the trained architecture whatever the config's model says."""
    ckpt = last_checkpoint(trained)
    result = run_cmap(
        "test",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        "--model.init_args.encoder.init_args.n_layers",
        "3",
        "--ckpt_path",
        ckpt,
        "--trainer.enable_progress_bar",
        "false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "f1_macro" in result.stdout


@needs_shared
def test_bands_and_classes_follow_other_data(tmp_path, run_cmap):
    """The demo config runs unchanged on a real 2-band, 2-class dataset."""
    result = run_cmap(
        "fit",
        "--config",
        DEMO,
        "--data.init_args.root",
        SHARED / "cerrado_2classes",
        *TINY,
        "--trainer.max_epochs",
        "1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    hparams = yaml.safe_load(
        (tmp_path / "lightning_logs" / "version_0" / "hparams.yaml").read_text()
    )
    assert hparams["classes"] == ["Cerrado", "Pasture"]
    assert hparams["decoder"]["init_args"]["num_classes"] == 2
    assert hparams["encoder"]["init_args"]["bands_encoder"]["init_args"]["in_bands"] == 2


def test_print_config_is_complete(tmp_path, run_cmap):
    result = run_cmap("fit", "--config", DEMO, "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load(result.stdout)
    assert config["model"]["class_path"] == "cmap.tasks.Classifier"
    assert config["data"]["init_args"]["season_length"] == 395
    assert config["trainer"]["max_epochs"] == 30


def test_bad_data_ends_with_a_clear_error(tmp_path, run_cmap):
    result = run_cmap(
        "fit", "--config", DEMO, "--data.init_args.root", tmp_path / "missing", cwd=tmp_path
    )
    assert result.returncode == 2
    assert f"cmap: error: {tmp_path / 'missing'}: samples folder not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            ["--model.init_args.decoder.init_args.in_dim", "32"],
            "expects in_dim=32 features but the encoder (TransformerEncoder) produces 64",
        ),
        (
            ["--model.init_args.encoder.init_args.d_model", "48"],
            "bands_encoder (PixelEncoding) produces width 64 but d_model is 48",
        ),
        (
            ["--model.init_args.encoder.init_args.position_encoder.init_args.max_len", "100"],
            "PositionalEncoding got positions in [",
        ),
    ],
)
def test_bad_model_settings_end_with_a_clear_error(
    override, message, tmp_path, synthetic_root, run_cmap
):
    result = run_cmap(
        "fit",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        *TINY,
        *override,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cmap: error: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_writes_one_row_per_sample(trained, synthetic_root, run_cmap):
    import pyarrow.parquet as pq

    from cmap.data import SITSDataModule

    ckpt = last_checkpoint(trained)
    result = run_cmap(
        "predict",
        "--config",
        DEMO,
        "--data.init_args.root",
        synthetic_root,
        "--ckpt_path",
        ckpt,
        "--trainer.enable_progress_bar",
        "false",
        cwd=trained,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted((trained / "lightning_logs").glob("version_*/predictions.parquet"))
    assert len(written) == 1
    assert not list((trained / "lightning_logs").glob("version_*/*.partial"))  # renamed into place
    table = pq.read_table(written[0])
    expected = SITSDataModule(str(synthetic_root)).load_split("test")
    assert table.num_rows == len(expected)
    assert table.column("poi_id").to_pylist() == expected.poi_ids.tolist()
    assert table.column_names[:4] == ["poi_id", "season", "label", "confidence"]
    probabilities = table.select([c for c in table.column_names if c.startswith("p_")])
    assert probabilities.num_columns == 7
    total = sum(probabilities.column(i).to_numpy() for i in range(7))
    assert abs(total - 1).max() < 1e-4
    prior = table.schema.metadata[b"OUTPUT_PRIOR"].decode().split(",")  # for `cmap priors`
    assert len(prior) == 7 and abs(sum(map(float, prior)) - 1) < 1e-4


def test_trainer_model_and_data_configs_can_be_separate_files(tmp_path, run_cmap):
    demo = yaml.safe_load(DEMO.read_text())
    for section in ("trainer", "model", "data"):
        (tmp_path / f"{section}.yaml").write_text(yaml.safe_dump(demo[section]))
    args = [f"--{s}={tmp_path / s}.yaml" for s in ("trainer", "model", "data")]
    result = run_cmap("fit", *args, "--print_config", cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load(result.stdout)
    assert config["model"]["init_args"]["encoder"]["init_args"]["d_model"] == 64
    assert config["data"]["init_args"]["root"] == "data/demo"
    assert config["trainer"]["max_epochs"] == 30
