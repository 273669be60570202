"""How good is cmap on real data, compared with a random forest and TempCNN?

    python benchmarks/accuracy.py [--root data/demo --root ../shared/data/rondonia_l8 ...]
        [--models transformer exchanger ltae tempcnn rf] [--seeds 0 1 2] [--max-epochs N]

For each samples folder, the same splits and seeds for every model:

- cmap models: `configs/classifier.yaml` (the default: a Transformer, d_model 128 x 2 layers)
  and the same config with the encoder of `configs/models/{exchanger,ltae,tempcnn}.yaml`
  (`reference`, run only when named: the reference model, `configs/models/transformer.yaml`).
  They see the series as they are: irregular dates, their own lengths, positions in days
  (TempCNN grids them inside the model, see its docstring). Training stops early on val
  macro-F1 as the config says; the test scores are those of the best-val checkpoint.
- `rf`: scikit-learn's random forest, 500 trees, on dates x bands linearly interpolated to a
  fixed grid (as many evenly spaced days as the median series has dates, over the span of
  the training dates). Needs `pip install -e ".[bench]"`.

Test split metrics: overall accuracy, macro-F1, Cohen's kappa and per-class F1 (torchmetrics
on the predicted classes), with training time and parameter count (for the forest: its tree
nodes). Prints a markdown table per dataset and writes benchmarks/results/accuracy.json.

The seeds of a cmap model are also scored as an ensemble (`seed_ensemble`: the mean of their
test probabilities; it costs the seeds' training and prediction times together).

Seeds pair the runs: seed s gives every model the same split, so each model is also compared
with the default (`transformer`) seed by seed (`paired`: mean and sd of the differences in
test macro-F1). `--name NAME` stores a run of the default config with the extra cmap
arguments under NAME (e.g. `--name transformer_la -- --model.init_args.criterion.init_args.
logit_adjustment 1`), so variants sit beside the default in the same table.

`--pretrain train|all` (with `--name`) starts the cmap model from its encoder pretrained by
masked reconstruction (`configs/pretrain.yaml`'s task and schedule, labels not read, once
per dataset with seed 0): on the training split, or on the series of every split (`all`:
the region's own unlabelled pixels, test ones included, as a user pretrains before mapping).

`--date-views K` also scores each cmap run with test-time averaging over date subsets: the
mean softmax of the full series and K copies in which each valid date is hidden with
probability `--view-drop` (seeded; at least one date kept), stored as `date_views`.

Target (issue 22): on every real dataset, the default at least 3 points of macro-F1 above the
best of random forest and TempCNN.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine, write_results
from _pretrain import pooled_splits, pretrain, pretrain_config
from _scores import paired, scores, seed_ensemble, summarise, table

from cmap.cli import build
from cmap.data import SITSDataModule

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
DEFAULT = CONFIGS / "classifier.yaml"
ENCODERS = {
    "transformer": None,  # the default config's own model
    "exchanger": CONFIGS / "models" / "exchanger.yaml",
    "ltae": CONFIGS / "models" / "ltae.yaml",
    "tempcnn": CONFIGS / "models" / "tempcnn.yaml",
    "reference": CONFIGS / "models" / "transformer.yaml",  # not run unless named in --models
}
MODELS = ["transformer", "exchanger", "ltae", "tempcnn", "rf"]  # run by default
INPUTS = {
    "cmap": "irregular dates as observed, positions = days since season start, padding masked",
    "rf": "bands linearly interpolated to a fixed grid of days (median number of dates)",
}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def run_cmap(root: Path, model: str, seed: int, args, folder: Path, extra=None) -> dict:
    """Fit the default config with `model`'s encoder (a named variant: the default encoder
    with the `extra` arguments, default `args.extra`); test the best-val weights."""
    argv = ["--config", str(args.config)]
    if ENCODERS.get(model):
        argv += ["--model", str(ENCODERS[model])]
    argv += [
        *("--data.init_args.root", str(root), "--data.init_args.seed", str(seed)),
        *("--seed_everything", str(seed), *QUIET),
        *("--trainer.logger.init_args.save_dir", str(folder)),
        *("--model.init_args.log_figures", "false"),
        *("--model.init_args.attention_every_n_epochs", "0"),
        *("--model.init_args.embeddings_every_n_epochs", "0"),
        *(args.extra if extra is None else extra),
    ]
    if args.max_epochs:
        argv += ["--trainer.max_epochs", str(args.max_epochs)]
    if args.max_series:
        argv += ["--data.init_args.max_per_class", str(args.max_series)]
    cli = build(argv)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    best = cli.trainer.checkpoint_callback.best_model_path
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    cli.model.load_state_dict(state)
    cli.model.eval()
    data = cli.datamodule
    data.setup("test")
    probabilities, views, target = [], [], []
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for batch in data.test_dataloader():
            probabilities.append(cli.model(batch).softmax(dim=-1))
            views.append(date_views(cli.model, batch, args.date_views, args.view_drop, generator))
            target.append(batch["class"])
    probabilities, target = torch.cat(probabilities).numpy(), torch.cat(target).numpy()
    extra_scores = {}
    if args.date_views:
        viewed = torch.cat(views).numpy().argmax(axis=1)
        extra_scores["date_views"] = scores(viewed, target, data.classes)
    return (
        scores(probabilities.argmax(axis=1), target, data.classes)
        | extra_scores
        | {
            "probabilities": probabilities,  # for the seeds' ensemble, not stored
            "target": target,
            "fit_s": round(seconds, 1),
            "epochs": cli.trainer.current_epoch,
            "batch_size": data.batch_size,
            "params": sum(p.numel() for p in cli.model.parameters()),
            "train_series": len(data.datasets["train"]),
        }
    )


def date_views(model, batch: dict, views: int, drop: float, generator) -> torch.Tensor | None:
    """Mean softmax [N, K] of the full series and `views` copies of the batch, each valid date
    hidden with probability `drop` (the first kept where none would be); None for no views."""
    if not views:
        return None
    total = model(batch).softmax(dim=-1)
    for _ in range(views):
        mask = batch["mask"] & (torch.rand(batch["mask"].shape, generator=generator) >= drop)
        emptied = ~mask.any(dim=1)
        mask[emptied] = batch["mask"][emptied] & (torch.cumsum(batch["mask"][emptied], 1) == 1)
        view = batch | {
            "mask": mask,
            "ts": batch["ts"] * mask[..., None],
            "positions": batch["positions"] * mask,
        }
        total += model(view).softmax(dim=-1)
    return total / (views + 1)


def gridded(data: SITSDataModule, split: str, grid: np.ndarray | None = None):
    """A split's series as [N, G * C] features on a fixed grid of days, labels [N], grid."""
    dataset = data.datasets[split]
    batch = dataset.__getitems__(list(range(len(dataset))))
    ts, days, mask = batch["ts"].numpy(), batch["days"].numpy(), batch["mask"].numpy()
    if grid is None:
        lengths = mask.sum(axis=1)
        valid = days[mask]
        grid = np.linspace(valid.min(), valid.max(), int(np.median(lengths)))
    out = np.empty((len(ts), len(grid), ts.shape[-1]), dtype=np.float32)
    for i in range(len(ts)):  # np.interp is one series and band at a time
        d = days[i, mask[i]]
        for c in range(ts.shape[-1]):
            out[i, :, c] = np.interp(grid, d, ts[i, mask[i], c])
    return out.reshape(len(ts), -1), batch["class"].numpy(), grid


def run_rf(root: Path, seed: int, args) -> dict:
    """Random forest of 500 trees on the gridded series."""
    from sklearn.ensemble import RandomForestClassifier

    data = SITSDataModule(root=str(root), seed=seed, max_per_class=args.max_series)
    data.setup("fit")
    data.setup("test")
    start = time.perf_counter()
    x, y, grid = gridded(data, "train")
    forest = RandomForestClassifier(n_estimators=args.trees, n_jobs=-1, random_state=seed)
    forest.fit(x, y)
    seconds = time.perf_counter() - start
    x_test, y_test, _ = gridded(data, "test", grid)
    return scores(forest.predict(x_test), y_test, data.classes) | {
        "fit_s": round(seconds, 1),
        "params": int(sum(tree.tree_.node_count for tree in forest.estimators_)),
        "train_series": len(y),
        "grid_days": len(grid),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, action="append")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--name", help="store the default config's run under this name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, help="cap the config's epochs (tests)")
    parser.add_argument("--max-series", type=int, help="training series per class (tests)")
    parser.add_argument("--config", type=Path, default=DEFAULT, help="the cmap config")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--pretrain", choices=["train", "all"], help="with --name, see above")
    parser.add_argument("--pretrain-epochs", type=int, default=0, help="0: auto")
    parser.add_argument("--date-views", type=int, default=0, help="see above")
    parser.add_argument("--view-drop", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=RESULTS / "accuracy.json")
    parser.add_argument("extra", nargs="*", help="more cmap arguments for the cmap models")
    args = parser.parse_args(argv)
    if args.pretrain and not args.name:
        parser.error("--pretrain makes a variant of the default: give it a --name")
    roots = args.root or [
        REPO / "data" / "demo",
        REPO.parent / "shared" / "data" / "cerrado_2classes",
        REPO.parent / "shared" / "data" / "rondonia_l8",
    ]
    # Datasets and models run earlier stay in the results file unless run again; a dataset's
    # earlier models are kept only if they ran with the same settings.
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    result: dict = {"inputs": INPUTS, "datasets": previous.get("datasets", {})}
    for root in roots:
        settings = {
            "config": os.path.relpath(args.config.resolve(), REPO),
            "seeds": args.seeds,
            "max_epochs": args.max_epochs,
        }
        earlier = result["datasets"].get(root.name, {})
        same = all(earlier.get(k) == v for k, v in settings.items())
        models = dict(earlier.get("models", {})) if same else {}
        for result_of in models.values():  # runs stored before seeds were recorded per run
            for seed, run in zip(args.seeds, result_of["per_seed"]):
                run.setdefault("seed", seed)
        for model in [args.name] if args.name else args.models:
            with tempfile.TemporaryDirectory() as tmp:
                extra, done = list(args.extra), {}
                if args.pretrain:
                    pool = (
                        root
                        if args.pretrain == "train"
                        else pooled_splits(root, Path(tmp) / "pool")
                    )
                    config = pretrain_config(args.config, Path(tmp) / "pretrain.yaml")
                    weights, done = pretrain(pool, config, args.pretrain_epochs, 0, Path(tmp))
                    extra += ["--model.init_args.encoder_weights_path", str(weights)]
                    done["pretrain_on"] = args.pretrain
                runs = [
                    (
                        run_rf(root, seed, args)
                        if model == "rf"
                        else run_cmap(root, model, seed, args, Path(tmp) / str(seed), extra)
                    )
                    | {"seed": seed}
                    for seed in args.seeds
                ]
            probabilities = [run.pop("probabilities", None) for run in runs]
            targets = [run.pop("target", None) for run in runs]
            models[model] = summarise(runs)
            if probabilities[0] is not None and len(runs) > 1:
                classes = list(runs[0]["f1_per_class"])
                models[model]["seed_ensemble"] = seed_ensemble(probabilities, targets, classes)
            models[model] |= ({"extra": args.extra} if args.extra else {}) | done
            print(root.name, model, {k: models[model][k] for k in ("oa", "f1_macro")}, flush=True)
        order = [*ENCODERS, "rf"]
        rank = {name: order.index(name) if name in order else len(order) for name in models}
        models = dict(sorted(models.items(), key=lambda item: rank[item[0]]))
        result["datasets"][root.name] = settings | {
            "date": time.strftime("%Y-%m-%d"),
            "models": models,
            "paired_vs_transformer": paired(models),
        }
        print(table(root.name, models), flush=True)
    write_results(result | {"machine": machine()}, args.out)
    return result


if __name__ == "__main__":
    main()
