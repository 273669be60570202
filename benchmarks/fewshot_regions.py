"""Adapting to a new region from K labelled series per class: prototypes against fine-tuning.

    python benchmarks/fewshot_regions.py [--root data/demo] [--target-points 600]
        [--shots 5 10] [--seeds 0 1 2] [--epochs 30]

The source is a labelled samples folder (default the demo); the target is another region of
the demo generator (`Region`: 2 °C warmer, sown 10 days later, brighter soils, a southern crop
mix; seed 1), of which only K training series per class are labelled. For each seed:

- `source`: the demo classifier (`configs/demo.yaml`) trained on the source, applied to the
  target as it is (no target label).
- `finetune`: that classifier's encoder fine-tuned (`configs/finetune.yaml`) on the K shots,
  final weights.
- `prototypes`: the source classifier's frozen encoder; each target test series takes the class
  of the nearest mean of the K shots' features (centred, unit norm, as `cmap fewshot`).
- `protonet`: the same with an encoder meta-learned on the source (`configs/protonet.yaml`).

Scores: macro-F1 (classes present in the target's test split) and OA on the whole target test
split, mean and sd over seeds; the shots are drawn per seed and shared by every method.
Writes benchmarks/results/fewshot_regions.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine, write_results
from _pretrain import QUIET
from _scores import scores

from cmap.cli import build
from cmap.commands import extract
from cmap.data import SITSDataModule
from cmap.data.demo import Region, generate
from cmap.fewshot import nearest_mean
from cmap.fewshot.command import load_encoder
from cmap.fewshot.features import split_features
from cmap.io.checkpoints import find_checkpoint

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TARGET = Region(
    warmth=2.0,
    sowing_shift=10.0,
    soil=1.15,
    crops={"mais": 0.35, "tournesol": 0.25, "ble_dur": 0.2, "ble_tendre": 0.1, "orge": 0.1},
    name="target",
)


def fit(config: str, root: Path, seed: int, epochs: int, folder: Path, *extra: str):
    """A cmap fit; returns the CLI (model with its final weights) and its run folder."""
    cli = build([
        *("--config", str(CONFIGS / config), "--data.init_args.root", str(root)),
        *("--data.init_args.seed", str(seed), "--seed_everything", str(seed)),
        *("--trainer.max_epochs", str(epochs), *QUIET),
        *("--trainer.logger.init_args.save_dir", str(folder)), *extra,
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


def predict(model, dataset) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        batch = dataset.__getitems__(list(range(len(dataset))))
        return model(batch).argmax(dim=-1).numpy()


def shots_of(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K training series of every class (all it has when fewer), seeded."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c in np.unique(labels[labels >= 0])]
    )


def prototypes(encoder, train, test, support: np.ndarray, n_classes: int) -> np.ndarray:
    """Nearest-class-mean predictions [M] of the test series from the support series."""
    x_train, y_train = split_features(encoder, train)
    x_test, _ = split_features(encoder, test)
    return nearest_mean(x_train[support], y_train[support], x_test, n_classes)


def run_seed(source: Path, target: Path, seed: int, args, tmp: Path) -> dict:
    data = SITSDataModule(str(target))
    data.setup("fit")
    data.setup("test")
    train, test, classes = data.datasets["train"], data.datasets["test"], data.classes
    truth = test.table.labels
    out = {}
    start = time.perf_counter()
    quiet = ("--model.init_args.log_figures", "false")
    supervised = fit("demo.yaml", source, seed, args.epochs, tmp / "source", *quiet)
    best = find_checkpoint(tmp / "source")  # the best validation epoch, as for every method
    supervised.model.load_state_dict(torch.load(best, weights_only=False)["state_dict"])
    out["source"] = scores(predict(supervised.model, test), truth, classes)
    extract(best, tmp / "source_encoder")
    fit("protonet.yaml", source, seed, args.epochs, tmp / "protonet")
    extract(find_checkpoint(tmp / "protonet"), tmp / "protonet_encoder")
    out["train_s"] = round(time.perf_counter() - start, 1)
    for k in args.shots:
        support = shots_of(train.table.labels, k, seed)
        for name, folder in (("prototypes", "source_encoder"), ("protonet", "protonet_encoder")):
            encoder, _ = load_encoder(tmp / folder)
            predicted = prototypes(encoder, train, test, support, len(classes))
            out[f"{name}@{k}"] = scores(predicted, truth, classes)
        weights = tmp / "source_encoder" / "encoder.safetensors"
        tuned = fit(
            "finetune.yaml", target, seed, args.finetune_epochs, tmp / f"finetune{k}", *quiet,
            "--model.init_args.encoder_weights_path", str(weights),
            "--data.init_args.max_per_class", str(k),
        )  # fmt: skip
        out[f"finetune@{k}"] = scores(predict(tuned.model, test), truth, classes)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo", help="source")
    parser.add_argument("--target-points", type=int, default=600)
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "fewshot_regions.json")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "target"
        generate(target, args.target_points, [2020, 2021], None, 0, seed=1, region=TARGET)
        for seed in args.seeds:
            runs.append(run_seed(args.root, target, seed, args, Path(tmp) / f"seed{seed}"))
            shown = {k: v["f1_macro"] for k, v in runs[-1].items() if isinstance(v, dict)}
            print(seed, shown, flush=True)
    methods = [k for k in runs[0] if isinstance(runs[0][k], dict)]
    summary = {
        m: {
            "f1_macro": round(statistics.mean(r[m]["f1_macro"] for r in runs), 4),
            "f1_macro_sd": round(statistics.pstdev(r[m]["f1_macro"] for r in runs), 4),
            "oa": round(statistics.mean(r[m]["oa"] for r in runs), 4),
        }
        for m in methods
    }
    for m, row in summary.items():
        print(f"| {m} | {row['f1_macro']:.3f} ± {row['f1_macro_sd']:.3f} | {row['oa']:.3f} |")
    result = {
        "source": args.root.name,
        "target_region": asdict(TARGET) | {"points": args.target_points, "seed": 1},
        "shots": args.shots, "seeds": args.seeds, "epochs": args.epochs,
        "finetune_epochs": args.finetune_epochs, "summary": summary, "per_seed": runs,
    }  # fmt: skip
    write_results(result | {"machine": machine()}, args.out)
    return result


if __name__ == "__main__":
    main()
