"""Choosing the default without the test split: nested cross-validation over train + val.

    python benchmarks/selection.py [--root ../shared/data/rondonia_l8 --root ...] [--folds 4]
        [--repeats 2] [--seeds 0 1 2] [--candidates default no_mixup width64 ...]

For a dataset whose val split is too small to choose between settings (rondonia_l8: 32
series), the train and val series are pooled and cut `repeats` times into `folds`
class-stratified folds (seeded). For each outer fold, a candidate (`configs/classifier.yaml`
with a few changed arguments) trains on the other folds, keeping a class-stratified quarter of
them as its validation split for early stopping and checkpoint choice, and is scored on the
outer fold (macro-F1). One candidate is chosen for every dataset given (`--root`, repeated):
the best mean over the datasets of their CV means. Only then are the test splits read: the
chosen candidate and the default train on each original train / val split with `seeds` and
are scored on test, the default's result re-stated with an honest selection. Writes
benchmarks/results/selection.json.

`no_mixup` is the default without its manifold mixup; the other candidates, tried before mixup
became the default, are variants of `no_mixup`. The candidate `pretrained` starts from the
default's encoder pretrained by masked reconstruction on all the dataset's series, labels not
read (`accuracy.py --pretrain all`), once per dataset before the folds are cut: every fold
fine-tunes the same encoder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import RESULTS, machine, write_results
from _pretrain import pooled_splits, pretrain, pretrain_config
from accuracy import DEFAULT, run_cmap

REPO = Path(__file__).resolve().parents[1]
ENCODER = "--model.init_args.encoder.init_args."
NO_MIXUP = ["--model.init_args.mixup", "null"]
TRIED = {  # tried before mixup became the default (2026-12-02): variants of the config without it
    "width64": [
        *(f"{ENCODER}d_model", "64", f"{ENCODER}position_encoder.init_args.d_model", "64"),
        *(f"{ENCODER}bands_encoder.init_args.widths", "[32, 64]"),
        *("--model.init_args.decoder.init_args.in_dim", "64"),
    ],
    "dropout0.2": [
        f"{ENCODER}dropout_p",
        "0.2",
        "--model.init_args.decoder.init_args.dropout_p",
        "0.2",
    ],
    "lr1e-3": ["--model.init_args.optimizer.init_args.lr", "0.001"],
    "weight_decay0.05": ["--model.init_args.optimizer.init_args.weight_decay", "0.05"],
    "layers1": [f"{ENCODER}n_layers", "1"],
    "ltae": ["--model", str(REPO / "configs" / "models" / "ltae.yaml")],  # another encoder
    "time_shift7": ["--data.init_args.time_shift", "7"],
    "pretrained": [],  # + the dataset's pretrained encoder, see `options`
}
CANDIDATES = {
    "default": [],  # configs/classifier.yaml as it is (with manifold mixup)
    "no_mixup": NO_MIXUP,
    **{name: [*NO_MIXUP, *extra] for name, extra in TRIED.items()},
}


def pooled(root: Path) -> tuple[pa.Table, np.ndarray]:
    """The train and val label rows together, and each row's class."""
    table = pa.concat_tables([pq.read_table(root / s / "labels.pq") for s in ("train", "val")])
    return table, np.array([str(v) for v in table["label"].to_pylist()])


def stratified_folds(classes: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number [N] of each row: each class dealt out evenly after a shuffle."""
    fold = np.empty(len(classes), dtype=np.int64)
    for c in np.unique(classes):
        rows = rng.permutation(np.flatnonzero(classes == c))
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def write_fold(root: Path, out: Path, table: pa.Table, split_of: np.ndarray) -> None:
    """A samples folder whose train / val / test hold the rows `split_of` names; the other
    tables of each split keep the points of its rows."""
    sources = [pq.read_table(p) for s in ("train", "val") for p in sorted((root / s).glob("*.pq"))
               if p.name != "labels.pq"]  # fmt: skip
    names = [p.name for s in ("train", "val") for p in sorted((root / s).glob("*.pq"))
             if p.name != "labels.pq"]  # fmt: skip
    for split in ("train", "val", "test"):
        rows = table.filter(pa.array(split_of == split))
        (out / split).mkdir(parents=True)
        pq.write_table(rows, out / split / "labels.pq")
        wanted = pc.unique(rows["poi_id"])
        for name in sorted(set(names)):
            parts = [t for n, t in zip(names, sources) if n == name]
            whole = pa.concat_tables(parts)
            pq.write_table(whole.filter(pc.is_in(whole["poi_id"], wanted)), out / split / name)
    for path in root.iterdir():
        if path.is_file():
            shutil.copy(path, out / path.name)


def cross_validate(root: Path, args, work: Path, weights) -> tuple[dict[str, list[float]], list]:
    """Outer-fold macro-F1 of every candidate, fold by fold (same folds for all), and each
    fold's train / val / test series counts."""
    table, classes = pooled(root)
    scores: dict[str, list[float]] = {name: [] for name in args.candidates}
    sizes = []
    for repeat in range(args.repeats):
        rng = np.random.default_rng(args.seed + repeat)
        outer = stratified_folds(classes, args.folds, rng)
        for fold in range(args.folds):
            inner = stratified_folds(classes, 4, rng)  # a quarter of the rest: validation
            split_of = np.where(outer == fold, "test", np.where(inner == 0, "val", "train"))
            folder = work / f"r{repeat}f{fold}"
            write_fold(root, folder, table, split_of)
            sizes.append([int((split_of == s).sum()) for s in ("train", "val", "test")])
            for name in args.candidates:
                setup = options(name, args, weights)
                run = run_cmap(folder, "transformer", fold, setup, work / "logs")
                scores[name].append(run["f1_macro"])
                print(f"repeat {repeat} fold {fold} {name} {run['f1_macro']:.4f}", flush=True)
    return scores, sizes


def options(name: str, args, weights: Path | None) -> SimpleNamespace:
    """What accuracy.run_cmap needs to train candidate `name` (`weights`: the dataset's
    pretrained encoder)."""
    extra = CANDIDATES[name]
    if name == "pretrained":
        extra = [*extra, "--model.init_args.encoder_weights_path", str(weights)]
    return SimpleNamespace(config=DEFAULT, extra=extra, max_epochs=args.max_epochs,
                           max_series=None, date_views=0, view_drop=0.0)  # fmt: skip


def described(scores: list[float]) -> dict:
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return {"mean": round(statistics.mean(scores), 4), "sd": round(sd, 4), "per_fold": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, action="append", help="default: rondonia_l8")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="test runs")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument("--max-epochs", type=int, help="cap the config's epochs (tests)")
    parser.add_argument("--pretrain-epochs", type=int, default=0, help="0: auto")
    parser.add_argument("--out", type=Path, default=RESULTS / "selection.json")
    args = parser.parse_args()
    roots = args.root or [REPO.parent / "shared" / "data" / "rondonia_l8"]
    datasets: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights: dict[str, Path | None] = dict.fromkeys(r.name for r in roots)
        for root in roots:
            work = Path(tmp) / root.name
            datasets[root.name] = {"root": str(root)}
            if "pretrained" in args.candidates:
                config = pretrain_config(DEFAULT, work / "pretrain.yaml")
                pool = pooled_splits(root, work / "pool")
                weights[root.name], datasets[root.name]["pretrain"] = pretrain(
                    pool, config, args.pretrain_epochs, 0, work / "pretrain"
                )
            scores, sizes = cross_validate(root, args, work, weights[root.name])
            cv = {name: described(s) for name, s in scores.items()}
            datasets[root.name] |= {"fold_series": sizes, "cross_validation": cv}
            datasets[root.name]["best_here"] = max(cv, key=lambda name: cv[name]["mean"])
        # one choice for every dataset: the best mean of the datasets' CV means
        overall = {name: round(statistics.mean(d["cross_validation"][name]["mean"]
                                               for d in datasets.values()), 4)
                   for name in args.candidates}  # fmt: skip
        chosen = max(overall, key=overall.get)
        for root in roots:  # the test splits, read once the choice is made
            test = {}
            for name in dict.fromkeys(["default", chosen]):
                folder = Path(tmp) / root.name
                setup = options(name, args, weights[root.name])
                runs = [run_cmap(root, "transformer", seed, setup, folder / f"{name}{seed}")
                        for seed in args.seeds]  # fmt: skip
                f1 = [r["f1_macro"] for r in runs]
                test[name] = {"f1_macro": round(statistics.mean(f1), 4), "per_seed": f1,
                              "f1_per_class": [r["f1_per_class"] for r in runs]}  # fmt: skip
            datasets[root.name]["test"] = test
    result = {"folds": args.folds, "repeats": args.repeats, "fold_seed": args.seed}
    result |= {"candidates": {n: CANDIDATES[n] for n in args.candidates}, "datasets": datasets}
    result |= {"overall_cv": overall, "chosen": chosen}
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
