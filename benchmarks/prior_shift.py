"""Does re-estimating a new season's class priors (`cmap priors`, EM) keep its crops right?

    python benchmarks/prior_shift.py [--root data/demo] [--seeds 0 1 2] [--epochs 30]
        [--share 0.94]

Trains the default classifier (`configs/classifier.yaml`) on every season of a samples folder
but its warm one, keeps the best-validation weights (and their output prior), and predicts
the test split of
- `in_season`: the training seasons (no shift: EM should change next to nothing);
- `in_season_skewed`: the same resampled (seeded) so that its two most frequent classes make
  `share` of it, as in a region where two crops cover most parcels (a pure prior shift);
- `new_season`: the warm season as it is;
- `new_season_skewed`: the warm season resampled alike.
Each is scored as predicted (`model`), after EM re-estimation of the priors (`em`, what
`cmap priors` does) and with the true class shares given (`given`: as from crop statistics,
an upper bound for EM). Reports OA, macro-F1 over the classes present and per-class recall,
mean over seeds, and the paired difference per seed. Writes benchmarks/results/prior_shift.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine, write_results
from _scores import scores, test_outputs
from accuracy import QUIET

from cmap.cli import build
from cmap.data.meta import read_meta
from cmap.products.priors import adjust, em_prior

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "classifier.yaml"
METHODS = ("model", "em", "given")
SETTINGS = ("in_season", "in_season_skewed", "new_season", "new_season_skewed")


def skewed(target: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Rows keeping every series of the two most frequent classes and enough of the others,
    drawn at random, for those two to make `share` of the rows."""
    top = np.argsort(-np.bincount(target))[:2]
    main = np.flatnonzero(np.isin(target, top))
    rest = np.flatnonzero(~np.isin(target, top))
    n = min(len(rest), round(len(main) * (1 - share) / share))
    return np.sort(np.concatenate([main, np.random.default_rng(seed).choice(rest, n, False)]))


def evaluate(p, target, reference, classes) -> dict:
    """Scores of the predicted, EM-adjusted and truth-adjusted probabilities."""
    truth = np.bincount(target, minlength=len(classes)) / len(target)
    prior, iterations = em_prior(p, reference)
    out = {"truth_share": truth.round(4).tolist(), "em_prior": prior.round(4).tolist()}
    out["em_iterations"] = iterations
    for name, q in (("model", p), ("em", adjust(p, reference, prior)),
                    ("given", adjust(p, reference, truth))):  # fmt: skip
        preds = q.argmax(axis=1)
        recall = [float((preds[target == k] == k).mean()) if (target == k).any() else None
                  for k in range(len(classes))]  # fmt: skip
        found = scores(preds, target, classes)
        present = [found["f1_per_class"][c] for k, c in enumerate(classes) if truth[k] > 0]
        out[name] = found | {
            "f1_macro_present": round(statistics.mean(present), 4),
            "recall_per_class": dict(
                zip(classes, [r if r is None else round(r, 4) for r in recall])
            ),
        }
    return out


def run(root: Path, train: list[int], warm: int, seed: int, args, folder: Path) -> dict:
    cli = build([
        *("--config", str(CONFIG), "--data.init_args.root", str(root)),
        *("--data.init_args.seasons", str(train), "--data.init_args.seed", str(seed)),
        *("--seed_everything", str(seed), "--trainer.max_epochs", str(args.epochs), *QUIET),
        *("--trainer.logger.init_args.save_dir", str(folder)),
        *("--model.init_args.log_figures", "false"),
        *("--model.init_args.attention_every_n_epochs", "0"),
        *("--model.init_args.embeddings_every_n_epochs", "0"),
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    best = cli.trainer.checkpoint_callback.best_model_path
    model = cli.model
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    model.eval()
    reference = model.output_prior.double().numpy()
    reference = reference / reference.sum()
    data, classes = cli.datamodule, cli.datamodule.classes
    result = {"output_prior": reference.round(4).tolist()}
    p, target = test_outputs(model, data)
    result["in_season"] = evaluate(p, target, reference, classes)
    rows = skewed(target, args.share, seed)
    result["in_season_skewed"] = evaluate(p[rows], target[rows], reference, classes)
    result["in_season_skewed"]["series"] = len(rows)
    new = type(data)(**(dict(data.hparams) | {"seasons": [warm]}))
    p, target = test_outputs(model, new)
    result["new_season"] = evaluate(p, target, reference, classes)
    rows = skewed(target, args.share, seed)
    result["new_season_skewed"] = evaluate(p[rows], target[rows], reference, classes)
    result["new_season_skewed"]["series"] = len(rows)
    return result


def summary(runs: list[dict], setting: str) -> dict:
    """Mean OA and macro-F1 (classes present) per method; EM's and given's paired gains."""
    out = {}
    for method in METHODS:
        for metric in ("oa", "f1_macro_present"):
            values = [r[setting][method][metric] for r in runs]
            out[f"{method}_{metric}"] = round(statistics.mean(values), 4)
            if method != "model":
                gain = [
                    100 * (r[setting][method][metric] - r[setting]["model"][metric]) for r in runs
                ]
                sd = statistics.stdev(gain) if len(gain) > 1 else 0.0
                out[f"{method}_minus_model_{metric}_points"] = [
                    round(statistics.mean(gain), 1),
                    round(sd, 1),
                ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--share", type=float, default=0.94)
    parser.add_argument("--out", type=Path, default=RESULTS / "prior_shift.json")
    args = parser.parse_args()
    generator = read_meta(args.root).get("generator", {})
    warm, seasons = generator.get("warm_season"), generator.get("seasons")
    if warm is None or not seasons:
        parser.error(f"{args.root}: meta.yaml names no warm season (a `cmap demo` folder)")
    train = [s for s in seasons if s != warm]
    runs = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            runs.append({"seed": seed} | run(args.root, train, warm, seed, args, Path(tmp)))
        print({k: runs[-1][k]["em"]["f1_macro"] for k in ("in_season", "new_season")}, flush=True)
    result = {"root": str(args.root), "train_seasons": train, "new_season": warm}
    result |= {"epochs": args.epochs, "share": args.share, "seeds": args.seeds}
    result["summary"] = {s: summary(runs, s) for s in SETTINGS}
    write_results(result | {"runs": runs, "machine": machine()}, args.out)


if __name__ == "__main__":
    main()
