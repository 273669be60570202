"""Map products, scored and timed: pixel vs parcel-level macro-F1, the effect of smoothing on
macro-F1, and the cost of each product beside the prediction it is made from.

On the demo cube (data/demo: 40 x 40 pixels, 12 fields, known truth) and on a larger cube
from the same generator (`--cube-size`, 200 x 200 by default), a demo Classifier (configs/
demo.yaml, `--epochs`) is trained per seed, predicts the cube with probabilities, and every
product is made from that map: uncertainty, smoothing (bayes, gaussian, majority), parcel maps
(mean, majority), assessment against the truth, a reference sample. Macro-F1 is over the
truth's classes, every truth pixel counted (a pixel the map leaves empty counts as wrong);
the parcel map's pixel-level macro-F1 gives each pixel of a parcel the parcel's class.
With ../shared/data/worldcereal_flanders, the same is done on a real patch (model trained on
another patch and season, parcels made from the crop-type raster's 4-connected patches).

    python benchmarks/products.py [--seeds 0 1 2] [--epochs 30] [--cube-size 200]

Needs `pip install -e ".[dev]"` (geopandas for the parcels).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import geopandas
import numpy as np
import rasterio
from _common import RESULTS, machine, write_results
from accuracy import QUIET
from rasterio.features import shapes
from shapely.geometry import shape

from cmap.cli import build
from cmap.data.demo import generate
from cmap.data.labels.sources import parcel_ids
from cmap.data.layers import read_static
from cmap.data.mapping import read_mapping
from cmap.main import main as cmap

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
FLANDERS = REPO.parent / "shared" / "data" / "worldcereal_flanders"
SMOOTHING = {"bayes": [], "gaussian": ["--sigma", "1"], "majority": ["--window", "3"]}


def quiet(args: list[str]) -> float:
    """Run `cmap ARGS` without its printing; returns the seconds it took."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cmap([str(a) for a in args])
    return time.perf_counter() - start


def macro_f1(truth: np.ndarray, predicted: np.ndarray, k: int, weights=None) -> float:
    """Macro-F1 over the classes present in `truth` (class ids; predicted ids >= k: none)."""
    counts = np.zeros((k, k + 1))
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    np.add.at(counts, (truth, np.minimum(predicted, k)), 1 if weights is None else weights)
    right = np.diag(counts[:, :k])
    present = counts.sum(axis=1) > 0
    f1 = 2 * right / np.maximum(counts.sum(axis=1) + counts[:, :k].sum(axis=0), 1)
    return round(float(f1[present].mean()), 4)


def fit(root: Path, work: Path, seed: int, config: Path, epochs: int) -> str:
    argv = ["--config", str(config), "--data.init_args.root", str(root)]
    argv += [*QUIET, "--seed_everything", str(seed), "--trainer.max_epochs", str(epochs)]
    argv += ["--trainer.logger.init_args.save_dir", str(work / f"logs{seed}")]
    argv += ["--model.init_args.log_figures", "false"]
    cli = build(argv)
    with contextlib.redirect_stdout(io.StringIO()):
        cli.trainer.fit(cli.model, cli.datamodule)
    return cli.trainer.checkpoint_callback.best_model_path


def predict(checkpoint: str, cube: str, output: Path, config: Path, *extra) -> float:
    return quiet([
        "predict", "--config", config, "--data.init_args.cube", cube, "--ckpt_path", checkpoint,
        "--trainer.callbacks.output", output, "--trainer.enable_progress_bar", "false",
        "--trainer.callbacks.quicklook", "false", "--trainer.logger", "false", *extra,
    ])  # fmt: skip


def products(stem: Path, truth: np.ndarray, parcels: Path, crop: str, reference: list) -> dict:
    """Every product of the map `<stem>.tif`: seconds, and macro-F1 against `truth` [H, W]
    (class ids, 255: none) for the map, its smoothings and its parcel maps."""
    probabilities = stem.with_name(stem.name + "_probabilities.tif")
    valid = truth != 255
    with rasterio.open(stem.with_suffix(".tif")) as src:
        classes = src.tags()["CLASS_NAMES"].split(",")

    def score(path: Path) -> float:
        with rasterio.open(path) as src:
            return macro_f1(truth[valid], src.read(1)[valid], len(classes))

    seconds = {"uncertainty": quiet(["uncertainty", probabilities, "--quicklook", "false"])}
    f1 = {"pixels": score(stem.with_suffix(".tif"))}
    for method, extra in SMOOTHING.items():
        out = stem.with_name(f"{stem.name}_{method}.tif")
        seconds[f"smooth_{method}"] = quiet(["smooth", probabilities, "--method", method,
                                             "--output", out, *extra])  # fmt: skip
        f1[f"smoothed_{method}"] = score(out)
    for method in ("mean", "majority"):
        out = stem.with_name(f"{stem.name}_parcels_{method}.gpkg")
        seconds[f"parcels_{method}"] = quiet(["parcels", probabilities, parcels, "--output",
                                              out, "--method", method])  # fmt: skip
        table = geopandas.read_file(out)
        table = table[table["class"].notna() & table[crop].isin(classes)]
        truth_ids = np.array([classes.index(c) for c in table[crop]])
        found = np.array([classes.index(c) for c in table["class"]])
        f1[f"parcels_{method}"] = macro_f1(truth_ids, found, len(classes))
        f1[f"parcels_{method}_as_pixels"] = macro_f1(
            truth_ids, found, len(classes), table["valid_pixels"].to_numpy()
        )
    seconds["assess"] = quiet(["assess", stem.with_suffix(".tif"), *reference, "--output",
                               stem.with_name(stem.name + "_assessment")])  # fmt: skip
    seconds["reference"] = quiet(["reference", stem.with_suffix(".tif"), "--total", "500",
                                  "--output", stem.with_name(stem.name + "_ref.gpkg")])  # fmt: skip
    return {"macro_f1": f1, "seconds": {k: round(v, 3) for k, v in seconds.items()}}


def demo_cube(folder: Path, seed: int, work: Path, checkpoint: str) -> dict:
    with rasterio.open(folder / "cube_truth.tif") as src:
        truth = src.read(1)
    stem = work / f"{folder.name}_{seed}"
    config = REPO / "configs" / "predict_demo.yaml"
    predict_s = predict(checkpoint, str(folder / "cube"), stem.with_suffix(".tif"), config)
    made = products(stem, truth, folder / "cube_parcels.geojson", "crop",
                    [folder / "cube_truth.tif"])  # fmt: skip
    relative = {k: round(v / predict_s, 3) for k, v in made["seconds"].items()}
    return made | {"predict_s": round(predict_s, 3), "cost_vs_predict": relative,
                   "pixels": int(truth.size)}  # fmt: skip


def flanders(work: Path, seed: int, epochs: int) -> dict:
    """Train on one patch's samples, map another patch, make and score every product."""
    from flanders import CONFIGS, MAP, TRAIN, cut_samples, patch_file

    cut_samples(FLANDERS, TRAIN, work / "fl_samples", 2019, "[0.6, 0.2, 0.2]")
    checkpoint = fit(work / "fl_samples", work, seed, CONFIGS / "fit.yaml", epochs)
    stem = work / f"flanders_{seed}"
    labels = patch_file(FLANDERS, MAP, "OUTPUT_POLY")
    predict_s = predict(checkpoint, str(FLANDERS / MAP / "S2_L2A_*.nc"),
                        stem.with_suffix(".tif"), CONFIGS / "predict.yaml")  # fmt: skip
    with rasterio.open(stem.with_suffix(".tif")) as src:
        classes = src.tags()["CLASS_NAMES"].split(",")
    codes, nodata, grid = read_static(labels, "CT")
    mapping = read_mapping(CONFIGS / "labels.yaml")
    keep = codes != nodata
    names = np.array([mapping.get(str(c), "other") for c in codes.ravel()]).reshape(codes.shape)
    truth = np.where(keep, [[classes.index(n) for n in row] for row in names], 255)
    patches = parcel_ids(codes, keep)
    rows = [(g, int(v)) for g, v in shapes(patches, keep, 4, grid.transform)]
    crops = {int(v): names[patches == v][0] for _, v in rows}
    frame = geopandas.GeoDataFrame(
        {"parcel_id": [v for _, v in rows], "crop": [crops[v] for _, v in rows]},
        geometry=[shape(g) for g, _ in rows],
        crs=grid.crs,
    )
    frame.to_file(work / "fl_parcels.gpkg")
    made = products(
        stem,
        truth.astype(np.uint8),
        work / "fl_parcels.gpkg",
        "crop",
        [labels, "--label_band", "CT", "--label_mapping", CONFIGS / "labels.yaml"],
    )
    return made | {"predict_s": round(predict_s, 3), "parcels": len(frame), "seed": seed}


def summary(runs: list[dict]) -> dict:
    """Mean and sd over seeds of every macro-F1 and cost."""
    out: dict = {}
    for part in ("macro_f1", "cost_vs_predict", "seconds"):
        keys = runs[0].get(part, {})
        out[part] = {
            k: [
                round(float(np.mean([r[part][k] for r in runs])), 4),
                round(float(np.std([r[part][k] for r in runs])), 4),
            ]
            for k in keys
        }
    out["predict_s"] = round(float(np.mean([r["predict_s"] for r in runs])), 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cube-size", type=int, default=200)
    parser.add_argument("--flanders-epochs", type=int, default=30)
    parser.add_argument("--no-flanders", action="store_true", help="skip the Flanders patch")
    parser.add_argument("--out", type=Path, default=RESULTS / "products.json")
    args = parser.parse_args(argv)
    config = REPO / "configs" / "demo.yaml"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        large = work / "large"
        with contextlib.redirect_stdout(io.StringIO()):
            generate(large, 50, [2021], None, args.cube_size, 7)
        runs: dict[str, list] = {"demo_cube": [], "large_cube": []}
        for seed in args.seeds:
            checkpoint = fit(DEMO, work, seed, config, args.epochs)
            runs["demo_cube"].append(demo_cube(DEMO, seed, work, checkpoint))
            runs["large_cube"].append(demo_cube(large, seed, work, checkpoint))
        result = {"machine": machine(), "epochs": args.epochs, "seeds": args.seeds,
                  "large_cube_size": args.cube_size}  # fmt: skip
        result |= {name: summary(r) | {"per_seed": r} for name, r in runs.items()}
        if FLANDERS.is_dir() and not args.no_flanders:
            result["flanders"] = flanders(work, args.seeds[0], args.flanders_epochs)
    write_results({k: json.loads(json.dumps(v)) for k, v in result.items()}, args.out)
    return result


if __name__ == "__main__":
    main()
