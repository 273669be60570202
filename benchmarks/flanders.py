"""The real-data walk-through, scored: Sentinel-2 NetCDF stacks of Flanders -> samples -> model
-> map of another patch and season, against its crop-type raster, beside a random forest.

Train on patch 0000280849BAC91C (season 2019: 10 m + 20 m bands, SCL mask, parcel-grouped
splits, AgERA5 temperatures), map patch 00002806639B424A (season 2018) with calendar-day and
growing-degree-day positions, and score every labelled pixel of that map (macro-F1 over the
reference classes present, overall accuracy). The random forest (500 trees) is trained on the
same training pixels, on series interpolated to a fixed grid of days, and predicts the same
pixels. The samples are also cut through a local static STAC catalogue of the training patch
(`benchmarks/flanders_stac.py`) and compared value by value with the NetCDF ones.

    python benchmarks/flanders.py [--seeds 0 1 2] [--max_epochs 30]

Needs ../shared/data/worldcereal_flanders and `pip install -e ".[bench]"`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import rasterio
import torch
from _common import RESULTS, machine, write_results
from accuracy import QUIET, gridded
from flanders_stac import write_catalogue

from cmap.cli import build
from cmap.data.layers import read_static
from cmap.data.mapping import read_mapping
from cmap.data.series.module import SITSDataModule
from cmap.main import main as cmap

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "flanders"
TRAIN, MAP = "0000280849BAC91C", "00002806639B424A"


def patch_file(root: Path, patch: str, prefix: str) -> Path:
    return next((root / patch).glob(f"{prefix}*.nc"))


def cut_samples(root: Path, patch: str, out: Path, year: int, split: str, cube: str | None = None):
    """`cmap samples` of every labelled pixel of a patch (parcel-grouped, seeded split)."""
    args = [
        *("samples", cube or str(root / patch / "S2_L2A_*.nc"), str(out)),
        *("--label_raster", str(patch_file(root, patch, "OUTPUT_POLY")), "--label_band", "CT"),
        *("--label_mapping", str(CONFIGS / "labels.yaml"), "--data", str(CONFIGS / "cube.yaml")),
        *("--weather", str(patch_file(root, patch, "AgERA5")), "--year", str(year)),
        *("--split", split),
    ]
    if cube is not None:
        args += ["--data", str(CONFIGS / "cube_stac.yaml")]
    with contextlib.redirect_stdout(io.StringIO()):
        cmap(args)


def same_samples(a: Path, b: Path) -> bool:
    for split in ("train", "val", "test"):
        for name in ("features.pq", "labels.pq"):
            x, y = pq.read_table(a / split / name), pq.read_table(b / split / name)
            if x.column_names != y.column_names or x.num_rows != y.num_rows:
                return False
            for column in x.column_names:
                left, right = x[column].to_numpy(), y[column].to_numpy()
                if left.dtype.kind == "f":
                    if not np.allclose(left, right, atol=1e-6):
                        return False
                elif not np.array_equal(left, right):
                    return False
    return True


def reference(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Class names of the labelled pixels of the mapped patch [P] and their flat index."""
    codes, nodata, _ = read_static(patch_file(root, MAP, "OUTPUT_POLY"), "CT")
    mapping = read_mapping(CONFIGS / "labels.yaml")
    where = np.flatnonzero(codes.ravel() != nodata)
    names = np.array([mapping.get(str(c), "other") for c in codes.ravel()[where]])
    return names, where


def score(predicted: np.ndarray, truth: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    present = sorted(set(truth))
    per_class = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    return {
        "f1_macro": round(float(per_class.mean()), 4),
        "oa": round(float((predicted == truth).mean()), 4),
        "f1_per_class": {str(c): round(float(f), 4) for c, f in zip(present, per_class)},
    }


def run_cmap(root: Path, samples: Path, work: Path, seed: int, positions: str, args) -> dict:
    configs = [CONFIGS / "fit.yaml"] + ([CONFIGS / "gdd.yaml"] if positions == "gdd" else [])
    argv = [arg for c in configs for arg in ("--config", str(c))]
    argv += [
        *("--data.init_args.root", str(samples), "--seed_everything", str(seed), *QUIET),
        *("--trainer.logger.init_args.save_dir", str(work / "logs")),
        *("--trainer.max_epochs", str(args.max_epochs)),
        *("--model.init_args.log_figures", "false"),
    ]
    cli = build(argv)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    fit_s = time.perf_counter() - start
    best = cli.trainer.checkpoint_callback.best_model_path
    output = work / f"map_{positions}_{seed}.tif"
    predict = ["predict", "--config", str(CONFIGS / "predict.yaml")]
    if positions == "gdd":
        weather = patch_file(root, MAP, "AgERA5")
        predict += ["--config", str(CONFIGS / "gdd.yaml"), "--data.init_args.weather", str(weather)]
    predict += [
        *("--data.init_args.cube", str(root / MAP / "S2_L2A_*.nc"), "--ckpt_path", best),
        *("--trainer.callbacks.output", str(output), "--trainer.enable_progress_bar", "false"),
        *("--trainer.callbacks.probabilities", "false", "--trainer.logger", "false"),
    ]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cmap(predict)
    with rasterio.open(output) as src:
        classes = np.array(src.tags()["CLASS_NAMES"].split(","))
        mapped = src.read(1).ravel()
    names, where = reference(root)
    predicted = np.where(
        mapped[where] < len(classes), classes[np.minimum(mapped[where], len(classes) - 1)], "nodata"
    )
    return score(predicted, names) | {
        "fit_s": round(fit_s, 1),
        "map_s": round(time.perf_counter() - start, 1),
        "epochs": cli.trainer.current_epoch,
        "best_epoch": int(torch.load(best, weights_only=True, map_location="cpu")["epoch"]),
    }


def run_rf(samples: Path, mapped: Path, seed: int, trees: int) -> dict:
    """The random forest on the training pixels' gridded series, scored on the other patch."""
    from sklearn.ensemble import RandomForestClassifier

    train = SITSDataModule(str(samples), seed=seed)
    train.setup("fit")
    x, y, grid = gridded(train, "train")
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed).fit(x, y)
    fit_s = time.perf_counter() - start
    other = SITSDataModule(str(mapped), classes=train.classes, seed=seed)
    other.setup("test")
    x_map, y_map, _ = gridded(other, "test", grid)
    predicted = np.array(train.classes)[forest.predict(x_map)]
    return score(predicted, np.array(other.classes)[y_map]) | {"fit_s": round(fit_s, 1)}


def summary(runs: list[dict]) -> dict:
    """Mean and sd of macro-F1 over seeds, mean OA and mean F1 per class, and the runs."""
    f1 = np.array([r["f1_macro"] for r in runs])
    classes = runs[0]["f1_per_class"]
    return {
        "f1_macro_mean": round(float(f1.mean()), 4),
        "f1_macro_sd": round(float(f1.std()), 4),
        "oa_mean": round(float(np.mean([r["oa"] for r in runs])), 4),
        "f1_per_class_mean": {
            c: round(float(np.mean([r["f1_per_class"][c] for r in runs])), 4) for c in classes
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root", type=Path, default=REPO.parent / "shared/data/worldcereal_flanders"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max_epochs", type=int, default=30)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS / "flanders.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cut_samples(args.root, TRAIN, work / "samples", 2019, "[0.6, 0.2, 0.2]")
        cut_samples(args.root, MAP, work / "mapped", 2018, "[0, 0, 1]")
        catalogue = write_catalogue(args.root / TRAIN, work / "stac")
        cut_samples(
            args.root, TRAIN, work / "samples_stac", 2019, "[0.6, 0.2, 0.2]", str(catalogue)
        )
        models: dict[str, list] = {"cmap_days": [], "cmap_gdd": [], "random_forest": []}
        for seed in args.seeds:
            for positions in ("days", "gdd"):
                run = run_cmap(args.root, work / "samples", work, seed, positions, args)
                models[f"cmap_{positions}"].append(run | {"seed": seed})
            models["random_forest"].append(
                run_rf(work / "samples", work / "mapped", seed, args.trees) | {"seed": seed}
            )
        counts = {
            split: pq.read_table(work / "samples" / split / "labels.pq").num_rows
            for split in ("train", "val", "test")
        }
        result = {
            "machine": machine(),
            "train_patch": TRAIN,
            "mapped_patch": MAP,
            "train_pixels": counts,
            "mapped_pixels": int(len(reference(args.root)[0])),
            "stac_samples_identical": same_samples(work / "samples", work / "samples_stac"),
            "max_epochs": args.max_epochs,
            "models": {name: summary(runs) for name, runs in models.items()},
        }
    write_results(result, args.out)
    return result


if __name__ == "__main__":
    main()
