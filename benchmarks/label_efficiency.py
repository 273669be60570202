"""Does self-supervised pretraining pay when labels are scarce?

    python benchmarks/label_efficiency.py [--root data/demo --root ../shared/data/rondonia_l8]
        [--fractions 0.01 0.05 0.2 1] [--seeds 0 1 2] [--epochs 30] [--pretrain-epochs 0]
        [--unlabelled-points 8000] [--recipes scratch pretrained contrastive] [--mixup]
        [--fewshot 5 10]

For each samples folder: pretrain the demo encoder with `configs/pretrain.yaml` (masked
reconstruction, labels ignored), extract it as `cmap extract` does, then train Classifiers
with `configs/demo.yaml` (from scratch) and `configs/finetune.yaml` (from the pretrained
encoder) on each fraction of the training labels (seeded, stratified, at least one series
per class), with the same seeds and the same number of epochs. Reports the best validation
macro-F1 over the epochs (mean and per seed) and the test macro-F1 (and F1 per class) of the
final weights. Writes benchmarks/results/label_efficiency.json.

What the encoder is pretrained on: a user pretrains on the unlabelled series of the region,
far more than the labelled ones. A synthetic dataset (one whose `meta.yaml` has a `generator`
section, like the demo) gets that from its generator: `--unlabelled-points` fresh points with
the same settings and the next seed (another stretch of weather and soils, no shared point).
Other datasets have no such pool and are pretrained on their own training split, as with
`--unlabelled-points 0`.

Recipes (`--recipes`): `scratch`, `pretrained` (masked reconstruction) and `contrastive`
(`configs/contrastive.yaml`: two views, NT-Xent), each pretrained once per dataset on the same
pool; `--mixup` adds each recipe trained with manifold mixup (`Mixup`, features, alpha 0.2).
`--fewshot K ...` also scores every pretrained encoder, frozen, on 300 seeded K-shot episodes
of the test split (nearest class mean, as `cmap fewshot`). `--prototypes` classifies the test
split by the nearest class mean of each fraction's labelled series with each frozen pretrained
encoder (no training); `--protonet-epochs N` first meta-learns the encoder on the fraction
with ProtoNet (from the last pretrained encoder), then does the same. Both report test
macro-F1 (classes present in test).

Target (issues 5 and 23): with 5 % of the labels, the best pretrained recipe >= 90 % of
scratch with 100 %, and clearly above scratch with 5 %.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import yaml
from _common import RESULTS, machine, write_results
from _pretrain import PRETRAIN_SERIES, QUIET, pretrain
from _scores import scores

from cmap.cli import build
from cmap.commands import extract
from cmap.data import SITSDataModule
from cmap.data.demo import generate
from cmap.errors import ConfigError
from cmap.fewshot import evaluate_episodes, nearest_mean, sample_episodes
from cmap.fewshot.command import load_encoder
from cmap.fewshot.features import labelled_split, split_features
from cmap.io.checkpoints import find_checkpoint

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


class BestScore(pl.Callback):
    """Highest value of a logged metric over the validation epochs of a fit."""

    def __init__(self, key: str):
        self.key, self.best = key, float("-inf")

    def on_train_epoch_end(self, trainer, pl_module):  # after this epoch's validation
        if self.key in trainer.callback_metrics:
            self.best = max(self.best, float(trainer.callback_metrics[self.key]))


def unlabelled_pool(root: Path, points: int, folder: Path) -> Path:
    """The samples folder to pretrain on: fresh series from `root`'s generator, else `root`."""
    meta = root / "meta.yaml"
    settings = (yaml.safe_load(meta.read_text()) or {}).get("generator") if meta.exists() else None
    if not settings or points <= 0:
        return root
    pool = folder / "unlabelled"
    seasons, warm = settings["seasons"], settings.get("warm_season")
    generate(pool, points, seasons, warm, cube_size=0, seed=settings["seed"] + 1)
    return pool


def classify(
    root: Path,
    fraction: float,
    seed: int,
    epochs: int,
    weights: Path | None,
    folder: Path,
    extra: tuple[str, ...] = (),
) -> dict:
    """One Classifier run (with the `extra` cmap arguments); best val macro-F1, final test
    macro-F1, seconds."""
    config = "finetune.yaml" if weights else "demo.yaml"
    args = [
        *("--config", str(CONFIGS / config), "--data.init_args.root", str(root)),
        *("--data.init_args.fraction", str(fraction), "--data.init_args.seed", str(seed)),
        *("--seed_everything", str(seed), "--trainer.max_epochs", str(epochs), *QUIET),
        *("--trainer.logger", "false", "--trainer.enable_checkpointing", "false"),
        "--trainer.callbacks=[]",
        *("--trainer.default_root_dir", str(folder)),
        *("--model.init_args.log_figures", "false"),
        *("--model.init_args.attention_every_n_epochs", "0"),
        *("--model.init_args.embeddings_every_n_epochs", "0"),
    ]
    if weights:
        args += ["--model.init_args.encoder_weights_path", str(weights)]
    if root.resolve() != (REPO / "data" / "demo").resolve():  # the configs weigh demo classes
        args += ["--model.init_args.classes_weights", "null"]
    cli = build([*args, *extra])
    best = BestScore("val/f1_macro")
    cli.trainer.callbacks.append(best)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    test = cli.trainer.test(cli.model, cli.datamodule, verbose=False)[0]
    return {
        "val_f1_macro": round(best.best, 4),
        "test_f1_macro": round(float(test["test/f1_macro"]), 4),
        "test_f1": {
            name: round(float(test[f"test/f1/{name}"]), 4) for name in cli.datamodule.classes
        },
        "train_series": len(cli.datamodule.datasets["train"]),
        "fit_s": round(seconds, 1),
    }


def summarise(runs: list[dict]) -> dict:
    return {
        key: round(statistics.mean(r[key] for r in runs), 4)
        for key in ("val_f1_macro", "test_f1_macro")
    } | {
        "test_f1_per_class": {
            name: round(statistics.mean(r["test_f1"][name] for r in runs), 4)
            for name in runs[0]["test_f1"]
        },
        "train_series": runs[0]["train_series"],
        "val_f1_macro_per_seed": [r["val_f1_macro"] for r in runs],
    }


PRETRAINING = {"pretrained": "pretrain.yaml", "contrastive": "contrastive.yaml"}
MIXUP = ("--model.init_args.mixup", "Mixup")


def fewshot_scores(weights: Path, root: Path, shots: list[int], seed: int) -> dict:
    """Nearest-class-mean scores of a frozen encoder on the test split's K-shot episodes."""
    encoder, _ = load_encoder(weights.parent)
    features, labels = split_features(encoder, labelled_split(None, "test", root))
    out = {}
    for k in shots:
        try:
            episodes = sample_episodes(labels, k, episodes=300, seed=seed)
        except ConfigError as err:  # too few test series per class for K shots
            out[f"{k}shot"] = {"skipped": str(err)}
            continue
        scores = evaluate_episodes(features, episodes)
        out[f"{k}shot"] = {key: round(v, 4) for key, v in scores.items()}
    return out


def adapted(
    root: Path, fraction: float, seed: int, weights: Path | None, protonet_epochs: int, folder: Path
) -> dict:
    """Test scores of the nearest class mean of the labelled fraction's series, with the frozen
    encoder `weights` or (protonet_epochs > 0) an encoder meta-learned from them on that
    fraction first (`configs/protonet.yaml`, 1-shot episodes, best few-shot val checkpoint)."""
    data = SITSDataModule(str(root), fraction=fraction, seed=seed)
    data.setup("fit")
    data.setup("test")
    if protonet_epochs:
        start = [] if weights is None else ["--model.init_args.encoder_weights_path", str(weights)]
        cli = build([
            *("--config", str(CONFIGS / "protonet.yaml"), "--data.init_args.root", str(root)),
            *("--data.init_args.fraction", str(fraction), "--data.init_args.seed", str(seed)),
            *("--seed_everything", str(seed), "--trainer.max_epochs", str(protonet_epochs)),
            *("--model.init_args.k_shot", "1", *QUIET, *start),
            *("--trainer.logger.init_args.save_dir", str(folder)),
        ])  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        extract(find_checkpoint(folder), folder / "encoder")
        weights = folder / "encoder" / "encoder.safetensors"
    encoder, _ = load_encoder(weights.parent)
    train, test = data.datasets["train"], data.datasets["test"]
    support, labels = split_features(encoder, train)
    query, truth = split_features(encoder, test)
    predicted = nearest_mean(support, labels, query, len(data.classes))
    return scores(predicted, truth, data.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, action="append")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.2, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pretrain-epochs", type=int, default=0, help="0: auto")
    parser.add_argument("--unlabelled-points", type=int, default=8000)
    parser.add_argument(
        "--recipes", nargs="+", default=["scratch", "pretrained"],
        choices=["scratch", *PRETRAINING],
    )  # fmt: skip
    parser.add_argument("--mixup", action="store_true", help="also each recipe with mixup")
    parser.add_argument("--fewshot", type=int, nargs="*", default=[], help="K shots, e.g. 5 10")
    parser.add_argument(
        "--prototypes", action="store_true",
        help="also the nearest class mean of each fraction with each frozen pretrained encoder",
    )  # fmt: skip
    parser.add_argument(
        "--protonet-epochs", type=int, default=0,
        help="also ProtoNet (from the last pretrained encoder) on each fraction, then prototypes",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "label_efficiency.json")
    args = parser.parse_args()
    roots = args.root or [REPO / "data" / "demo"]
    result: dict = {
        "epochs": args.epochs,
        "pretrain_epochs": args.pretrain_epochs or f"auto ({PRETRAIN_SERIES} series, 20-200)",
        "unlabelled_points": args.unlabelled_points,
        "seeds": args.seeds,
        "fractions": args.fractions,
        "recipes": args.recipes,
        "configs": "scratch: configs/demo.yaml; pretrained: configs/pretrain.yaml, contrastive: "
        "configs/contrastive.yaml, each then configs/finetune.yaml; +mixup: Mixup (features)",
        "datasets": {},
    }
    for root in roots:
        with tempfile.TemporaryDirectory() as tmp:
            pool = unlabelled_pool(root, args.unlabelled_points, Path(tmp))
            table: dict = {"pretrain_on": "training split" if pool == root else "generator pool"}
            weights: dict[str, Path | None] = {"scratch": None}
            for recipe in [r for r in args.recipes if r in PRETRAINING]:
                config = CONFIGS / PRETRAINING[recipe]
                folder = Path(tmp) / recipe
                weights[recipe], done = pretrain(pool, config, args.pretrain_epochs, 0, folder)
                table[f"{recipe}_pretraining"] = done
                if args.fewshot:
                    table[f"fewshot_{recipe}"] = fewshot_scores(
                        weights[recipe], root, args.fewshot, 0
                    )
            variants = [(r, ()) for r in args.recipes]
            variants += [(f"{r}+mixup", MIXUP) for r in args.recipes] if args.mixup else []
            for fraction in args.fractions:
                for name, extra in variants:
                    init = weights[name.split("+")[0]]
                    runs = [
                        classify(
                            root,
                            fraction,
                            seed,
                            args.epochs,
                            init,
                            Path(tmp) / f"{name}-{fraction:g}-{seed}",
                            extra,
                        )  # fmt: skip
                        for seed in args.seeds
                    ]
                    table[f"{name}@{fraction:g}"] = summarise(runs)
                    print(root.name, name, fraction, table[f"{name}@{fraction:g}"], flush=True)
                pretrained = [r for r in args.recipes if r in PRETRAINING]
                methods = [
                    (f"prototypes_{r}", weights[r], 0) for r in pretrained if args.prototypes
                ]
                if args.protonet_epochs:
                    start = weights[pretrained[-1]] if pretrained else None
                    methods.append(("protonet", start, args.protonet_epochs))
                for name, init, epochs in methods:
                    try:
                        runs = [
                            adapted(
                                root,
                                fraction,
                                seed,
                                init,
                                epochs,
                                Path(tmp) / f"{name}-{fraction:g}-{seed}",
                            )
                            for seed in args.seeds
                        ]
                    except ConfigError as error:  # e.g. ProtoNet with one series per class
                        table[f"{name}@{fraction:g}"] = {"not_possible": str(error)}
                        print(root.name, name, fraction, error, flush=True)
                        continue
                    table[f"{name}@{fraction:g}"] = {
                        "test_f1_macro": round(statistics.mean(r["f1_macro"] for r in runs), 4),
                        "test_f1_macro_per_seed": [r["f1_macro"] for r in runs],
                    }
                    print(root.name, name, fraction, table[f"{name}@{fraction:g}"], flush=True)
        low, full = min(args.fractions), max(args.fractions)
        target = 0.05 if 0.05 in args.fractions else low
        for name, _ in variants:
            if name != "scratch":
                table[f"{name}@5%_over_scratch@100%"] = round(
                    table[f"{name}@{target:g}"]["val_f1_macro"]
                    / max(table[f"scratch@{full:g}"]["val_f1_macro"], 1e-9),
                    4,
                )
        result["datasets"][root.name] = table
        write_results(result | {"machine": machine()}, args.out)  # each dataset as it ends


if __name__ == "__main__":
    main()
