"""Each benchmark script runs end to end at a tiny size and writes its results file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, SHARED

pytestmark = pytest.mark.slow  # subprocesses or several processes

TINY = {
    "data_pipeline.py": ["--points", "60", "--batch-size", "32", "--epochs", "1"],
    "data_loading.py": [
        *["--series", "300", "--dates", "12", "--batch-size", "32"],
        *["--train-steps", "1", "--large", "500"],
    ],
    "reporting.py": ["--epochs", "2", "--every", "1", "--repeats", "1"],
    "encoders.py": ["--batch-size", "8", "--dates", "12", "--steps", "1"],
    "label_efficiency.py": [
        *["--fractions", "0.1", "1", "--seeds", "0", "--epochs", "1", "--pretrain-epochs", "1"],
        *["--unlabelled-points", "40", "--recipes", "scratch", "contrastive"],
        *["--mixup", "--fewshot", "2", "--prototypes", "--protonet-epochs", "1"],
    ],
    "season_transfer.py": ["--seeds", "0", "--epochs", "1", "--time-shift", "10"],
    "prior_shift.py": ["--seeds", "0", "--epochs", "1"],
    "selection.py": [
        *["--folds", "2", "--repeats", "1", "--candidates", "default", "pretrained"],
        *["--seeds", "0", "--max-epochs", "1", "--pretrain-epochs", "1"],
    ],
    "predict.py": [
        *["--sizes", "32", "64", "--dates", "4", "--window", "32", "--batch-size", "256"],
        *["--format", "netcdf"],
    ],
    "flanders.py": ["--seeds", "0", "--max_epochs", "1", "--trees", "5"],
    "products.py": [
        *["--seeds", "0", "--epochs", "1", "--cube-size", "48", "--no-flanders"],
    ],
    "fewshot_regions.py": [
        *["--target-points", "80", "--shots", "2", "--seeds", "0", "--epochs", "1"],
        *["--finetune-epochs", "1"],
    ],
    "model_size.py": ["--sizes", "20", "1000000", "--max-epochs", "1"],
    "federated.py": [
        *["--points", "40", "--seeds", "0", "--rounds", "1", "--local-epochs", "1"],
        *["--runs", "fedavg", "fedavg_own_heads", "--personal-epochs", "1"],
    ],
    "continual.py": [
        *["--seasons", "2020", "2021", "--seeds", "0", "--epochs", "1", "--replay-size", "10"],
    ],
    "tiles.py": ["--size", "40", "--models", "ltae", "--workers", "2", "--window", "16"],
    "vector_read.py": ["--side", "20", "--tile-km", "2", "--formats", "gpkg", "geojson"],
    "accuracy.py": [
        *["--seeds", "0", "--max-epochs", "1", "--max-series", "4", "--trees", "5"],
        *["--models", "transformer", "tempcnn", "rf"],
    ],
}
WITH_ROOT = {
    "reporting.py", "label_efficiency.py", "season_transfer.py", "accuracy.py", "prior_shift.py",
    "selection.py", "model_size.py", "fewshot_regions.py", "continual.py",
}  # fmt: skip


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_and_writes_json(script, tmp_path, synthetic_root):
    if script == "flanders.py" and not SHARED.is_dir():
        pytest.skip("needs ../shared/data/worldcereal_flanders")
    out = tmp_path / "result.json"
    extra = ["--root", str(synthetic_root)] if script in WITH_ROOT else []
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / script),
            *TINY[script],
            *extra,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(out.read_text())
    assert numbers["machine"]["torch"]
    if script == "federated.py":
        summary, (run,) = numbers["summary"], numbers["per_seed"]
        assert set(summary) == {
            "local", "centralized", "centralized_tuned", "fedavg", "fedavg_tuned",
            "fedavg_own_heads", "fedavg_own_heads_tuned",
        }  # fmt: skip
        assert set(numbers["train_series"]) == {"north", "south", "hills"}
        gap = run["fedavg"]["hills"]["f1_macro"] - run["centralized"]["hills"]["f1_macro"]
        assert summary["fedavg"]["hills"]["minus_centralized"] == pytest.approx(gap, abs=1e-4)
        assert "minus_centralized_tuned" in summary["fedavg_tuned"]["mean"]
        return
    if script == "vector_read.py":
        for row in numbers["formats"].values():  # a 2 km tile in the middle of 10 km
            assert row["whole"]["parcels"] == 400 and row["tile"]["parcels"] == 25
            assert row["parcels"]["parcels"] == 16  # those with a pixel centre inside
        return
    if script == "continual.py":
        for positions in ("days", "gdd"):
            (run,) = numbers["positions"][positions]["per_seed"]
            for method in ("naive", "replay", "lwf"):
                rows = run[method]["rows"]  # after tasks 2020 and 2021, on both seasons
                assert len(rows) == 2 and all(len(row) == 2 for row in rows)
                oa = run[method]["oa"]
                assert oa["final"] == pytest.approx(
                    (rows[1][0]["oa"] + rows[1][1]["oa"]) / 2, abs=1e-4
                )
                assert oa["bwt"] == pytest.approx(rows[1][0]["oa"] - rows[0][0]["oa"], abs=1e-4)
        return
    if script == "reporting.py":
        assert len(numbers["reports_epoch_s"]) == 1 and len(numbers["reports_epoch_s"][0]) == 2
        assert isinstance(numbers["overhead_attention_embeddings_epochs"], float)
        # epoch 0: 2 confusion matrices + 2 label distributions; epoch 1: + attention figures
        assert numbers["images_written"] > 6
        return
    if script == "season_transfer.py":
        assert numbers["train_seasons"] == [2020] and numbers["shifted_season"] == 2021
        assert numbers["time_shift"] == 10 and 0 <= numbers["days_shift"]["shifted"] <= 1
        gain = 100 * (numbers["gdd"]["shifted"] - numbers["days"]["shifted"])
        assert numbers["gdd_over_days_shifted_points"] == pytest.approx(gain, abs=0.051)
        return
    if script == "prior_shift.py":
        run = numbers["runs"][0]
        assert abs(sum(run["output_prior"]) - 1) < 1e-3 and numbers["new_season"] == 2021
        skewed = run["new_season_skewed"]
        top2 = sorted(skewed["truth_share"])[-2:]
        assert sum(top2) >= 0.94 - 2 / skewed["series"]  # the two main crops, ~94 %
        given = skewed["given"]["f1_per_class"]
        assert set(given) == set(run["new_season"]["model"]["recall_per_class"])
        gain = 100 * (skewed["em"]["oa"] - skewed["model"]["oa"])
        summary = numbers["summary"]["new_season_skewed"]["em_minus_model_oa_points"]
        assert summary == [pytest.approx(gain, abs=0.051), 0.0]
        return
    if script == "selection.py":
        dataset = numbers["datasets"][synthetic_root.name]
        pool = sum(dataset["fold_series"][0])  # train + val of the samples folder
        assert sum(test for _, _, test in dataset["fold_series"]) == pool  # each series once
        assert all(val > 0 and train > val for train, val, _ in dataset["fold_series"])
        assert numbers["chosen"] == dataset["best_here"]  # one dataset: its own best
        assert len(dataset["cross_validation"]["pretrained"]["per_fold"]) == 2
        assert numbers["overall_cv"]["default"] == dataset["cross_validation"]["default"]["mean"]
        assert set(dataset["test"]) == {"default", numbers["chosen"]}
        # pretrained once on every series of the folder (labels unread): 120 points, 2 seasons
        assert dataset["pretrain"]["pretrain_epochs"] == 1
        assert dataset["pretrain"]["pretrain_series"] > sum(dataset["fold_series"][0])
        return
    if script == "tiles.py":
        runs = numbers["models"]["ltae"]
        assert runs["80px_2w"]["pixels"] > 3 * runs["40px_2w"]["pixels"] > 0
        assert runs["speedup"] == 1.0 and runs["peak_ratio_4x_pixels"] > 0
        return
    if script == "predict.py":
        assert numbers["format"] == "netcdf" and set(numbers["sizes"]) == {"32", "64"}
        assert numbers["sizes"]["64"]["valid_pixels"] > 3 * numbers["sizes"]["32"]["valid_pixels"]
        return
    if script == "flanders.py":
        assert numbers["stac_samples_identical"] is True
        assert numbers["mapped_pixels"] == 2236  # every labelled pixel of the mapped patch
        for model in ("cmap_days", "cmap_gdd", "random_forest"):
            run = numbers["models"][model]["runs"][0]
            assert set(run["f1_per_class"]) == {"grassland", "maize", "other", "potato"}
            assert run["f1_macro"] == pytest.approx(sum(run["f1_per_class"].values()) / 4, abs=1e-3)
        return
    if script == "products.py":
        demo = numbers["demo_cube"]["per_seed"][0]
        assert demo["pixels"] == 1600 and numbers["large_cube"]["per_seed"][0]["pixels"] == 48**2
        assert set(demo["macro_f1"]) == {
            "pixels", "smoothed_bayes", "smoothed_gaussian", "smoothed_majority", "parcels_mean",
            "parcels_mean_as_pixels", "parcels_majority", "parcels_majority_as_pixels",
        }  # fmt: skip
        assert all(0 <= f <= 1 for f in demo["macro_f1"].values())
        assert all(c > 0 for c in demo["cost_vs_predict"].values())
        assert "flanders" not in numbers  # tests/products/test_flanders.py covers real data
        return
    if script == "fewshot_regions.py":
        assert set(numbers["summary"]) == {
            "source", "prototypes@2", "protonet@2", "finetune@2"
        }  # fmt: skip
        assert all(0 <= row["f1_macro"] <= 1 for row in numbers["summary"].values())
        assert numbers["target_region"]["warmth"] == 2.0
        return
    if script == "model_size.py":
        runs, available = numbers["runs"], numbers["available_train_series"]
        assert set(runs) == {
            f"{m}@{s}" for m in ("transformer", "reference") for s in (20, 1000000)
        }
        small, whole = runs["reference@20"], runs["reference@1000000"]  # stratified: about 20
        assert 15 <= small["train_series"] < 30 and whole["train_series"] == available
        assert whole["params"] > 5 * runs["transformer@20"]["params"]  # d 256 x 4 vs d 128 x 2
        assert all(r["per_seed"][0]["epochs"] == 1 and r["series_per_s"] > 0 for r in runs.values())
        return
    if script == "accuracy.py":
        models = numbers["datasets"][synthetic_root.name]["models"]
        assert set(models) == {"transformer", "tempcnn", "rf"}
        for scores in models.values():
            per_class = [f for f in scores["f1_per_class"].values() if f is not None]
            # macro-F1 is the mean F1 of the classes in the test split (4 decimals, averaged
            # over seeds)
            assert len(scores["f1_per_class"]) == 7 and len(per_class) >= 5
            assert scores["f1_macro"] == pytest.approx(sum(per_class) / len(per_class), abs=2e-3)
            assert scores["kappa"] <= scores["oa"]  # chance agreement only lowers kappa
            assert scores["per_seed"][0]["train_series"] <= 7 * 4
        assert models["rf"]["per_seed"][0]["grid_days"] > 1
        pairs = numbers["datasets"][synthetic_root.name]["paired_vs_transformer"]
        assert set(pairs) == {"tempcnn", "rf"}  # the default against each, seed by seed
        for name, pair in pairs.items():
            gap = (
                models[name]["per_seed"][0]["f1_macro"]
                - models["transformer"]["per_seed"][0]["f1_macro"]
            )
            assert pair["per_seed"] == [pytest.approx(gap, abs=1e-4)] and pair["sd"] == 0
        return
    if script == "label_efficiency.py":
        table = numbers["datasets"][synthetic_root.name]
        # pretrained on the training share (~60 %) of 40 fresh generator points, each in
        # 2 seasons (3 season windows at most: the last season runs past a year)
        assert table["pretrain_on"] == "generator pool"
        assert 20 < table["contrastive_pretraining"]["pretrain_series"] < 120
        episodes = table["fewshot_contrastive"]["2shot"]
        assert episodes["episodes"] == 300 and 0 <= episodes["f1_macro"] <= 1
        assert table["scratch@0.1"]["train_series"] < table["contrastive@1"]["train_series"]
        assert set(table["contrastive+mixup@1"]["test_f1_per_class"]) >= {"other", "ble_dur"}
        scores = [v for k, v in _flatten(table) if k.endswith("f1_macro")]
        assert len(scores) == 4 * 2 * 2 + 1 + 2 * 2 and all(0 <= s <= 1 for s in scores)
        for method in ("prototypes_contrastive", "protonet"):  # nearest class mean, no fit
            assert len(table[f"{method}@0.1"]["test_f1_macro_per_seed"]) == 1
        assert "contrastive+mixup@5%_over_scratch@100%" in table
        return
    rates = [v for k, v in _flatten(numbers) if k.endswith("samples_per_s")]
    assert rates and all(isinstance(rate, int) and rate > 0 for rate in rates)
    if script == "encoders.py":  # the headline ratio is the ratio of the rates it reports
        ours, plain = (
            numbers[m]["train_samples_per_s"] for m in ("transformer", "plain_torch_transformer")
        )
        assert numbers["transformer_vs_plain_torch_train"] == pytest.approx(
            ours / plain, abs=0.01 + 1 / plain
        )


def _flatten(d, prefix=""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_a_long_tailed_copy_keeps_the_first_class_and_thins_the_others(synthetic_root, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "longtail"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "imbalanced.py"), str(synthetic_root),
         str(out), "--ratio", "10"],  # fmt: skip
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    kept = dict(
        (name, int(n))
        for name, n in (p.rsplit(" ", 1) for p in result.stdout.split(": ", 1)[1].split(", "))
    )
    counts = list(kept.values())
    assert counts == sorted(counts, reverse=True) and counts[-1] <= counts[0] / 5
    rows = sum(pq.read_table(out / s / "labels.pq").num_rows for s in ("train", "val", "test"))
    original = sum(
        pq.read_table(synthetic_root / s / "labels.pq").num_rows for s in ("train", "val", "test")
    )
    assert rows == sum(counts) < original and (out / "meta.yaml").exists()
