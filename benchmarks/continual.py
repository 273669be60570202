"""Continual season updates: a model carried from season to season with the new season's
labels only, against forgetting the earlier ones.

    python benchmarks/continual.py [--root data/demo] [--seeds 0 1 2] [--epochs 20]
        [--methods naive replay lwf] [--replay-size 200] [--positions days gdd]

Tasks are the demo's seasons in order (2019 -> 2020 -> 2021, 2021 the warm one). Task 1
trains `configs/demo.yaml` (day positions) or `configs/thermal.yaml` (growing-degree-day
positions) on 2019's labels; each later task starts from the previous task's best-val
checkpoint (`init_from`) and trains on its own season's labels (train and val of that
season only), with:

- `naive`: fine-tuning alone;
- `replay`: plus a reservoir buffer of `--replay-size` series of the earlier seasons
  (`--data.init_args.replay Replay`);
- `lwf`: plus learning without forgetting (`--model.init_args.distillation Distillation`,
  weight 1, T 2), no earlier data.

After each task, the model is scored on the test split of every season: R[i][j] (overall
accuracy and macro-F1 of the classes present). As in the lifelong-learning literature
(Lopez-Paz & Ranzato 2017; Chaudhry et al. 2018): average accuracy after task i (mean over
seasons <= i), final accuracy (after the last task, over every season), backward transfer
mean_{j<T} R[T][j] - R[j][j], forward transfer mean_{j>1} R[j-1][j] - b_j (b_j: the same
seed's untrained model) and forgetting mean_{j<T} max_{l<T} R[l][j] - R[T][j]. Mean and sd
over seeds. Writes benchmarks/results/continual.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine, write_results
from _pretrain import NO_REPORTS
from _scores import scores, test_outputs

from cmap.cli import build

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"days": REPO / "configs" / "demo.yaml", "gdd": REPO / "configs" / "thermal.yaml"}
METHODS = ["naive", "replay", "lwf"]


def evaluate(cli, seasons: list[int]) -> list[dict]:
    """The model's OA and macro-F1 on the test split of each season."""
    model, data = cli.model, cli.datamodule
    model.eval()
    out = []
    for season in seasons:
        other = type(data)(**(dict(data.hparams) | {"seasons": [season]}))
        probabilities, truth = test_outputs(model, other)
        s = scores(probabilities.argmax(axis=1), truth, other.classes)
        out.append({"oa": s["oa"], "f1_macro": s["f1_macro"]})
    model.train()
    return out


def method_args(method: str, earlier: list[int], size: int) -> list[str]:
    if method == "replay":
        return [
            *("--data.init_args.replay", "Replay"),
            *("--data.init_args.replay.seasons", str(earlier)),
            *("--data.init_args.replay.size", str(size)),
        ]
    return ["--model.init_args.distillation", "Distillation"] if method == "lwf" else []


def task(args, positions: str, season: int, seed: int, folder: Path, extra=()):
    """Train on `season`; the CLI holds the best-val weights afterwards."""
    cli = build([
        *("--config", str(CONFIGS[positions]), "--data.init_args.root", str(args.root)),
        *("--data.init_args.seasons", f"[{season}]", "--data.init_args.seed", str(seed)),
        *("--seed_everything", str(seed), "--trainer.max_epochs", str(args.epochs)),
        *("--trainer.logger.init_args.save_dir", str(folder), *NO_REPORTS, *extra),
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    best = cli.trainer.checkpoint_callback.best_model_path
    cli.model.load_state_dict(
        torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    )
    return cli, best


def transfer(matrix: np.ndarray, base: np.ndarray) -> dict:
    """Average / final accuracy, BWT, FWT and forgetting of an R matrix [T, T]."""
    t = len(matrix)
    return {
        "average_after_task": [round(float(matrix[i, : i + 1].mean()), 4) for i in range(t)],
        "final": round(float(matrix[-1].mean()), 4),
        "bwt": round(float(np.mean([matrix[-1, j] - matrix[j, j] for j in range(t - 1)])), 4),
        "fwt": round(float(np.mean([matrix[j - 1, j] - base[j] for j in range(1, t)])), 4),
        "forgetting": round(
            float(np.mean([matrix[: t - 1, j].max() - matrix[-1, j] for j in range(t - 1)])), 4
        ),
    }


def run_seed(args, positions: str, seasons: list[int], seed: int, tmp: Path) -> dict:
    first, best = task(args, positions, seasons[0], seed, tmp / "task1")
    untrained = build([
        *("--config", str(CONFIGS[positions]), "--data.init_args.root", str(args.root)),
        *("--data.init_args.seasons", f"[{seasons[0]}]", "--seed_everything", str(seed)),
        *NO_REPORTS,
    ])  # fmt: skip
    base = evaluate(untrained, seasons)
    row1 = evaluate(first, seasons)
    out = {"untrained": base}
    for method in args.methods:
        rows, previous, start = [row1], best, time.perf_counter()
        for i, season in enumerate(seasons[1:], start=1):
            extra = [
                "--model.init_args.init_from", str(previous),
                *method_args(method, seasons[:i], args.replay_size),
            ]  # fmt: skip
            cli, previous = task(args, positions, season, seed, tmp / f"{method}{i}", extra)
            rows.append(evaluate(cli, seasons))
        out[method] = {"rows": rows, "fit_s": round(time.perf_counter() - start, 1)}
        for metric in ("oa", "f1_macro"):
            matrix = np.array([[cell[metric] for cell in row] for row in rows])
            out[method][metric] = transfer(matrix, np.array([b[metric] for b in base]))
    return out


def summarise(per_seed: list[dict], methods: list[str]) -> dict:
    table = {}
    for method in methods:
        table[method] = {}
        for metric in ("oa", "f1_macro"):
            for key in ("final", "bwt", "fwt", "forgetting"):
                values = [s[method][metric][key] for s in per_seed]
                table[method][f"{metric}_{key}"] = round(statistics.mean(values), 4)
                table[method][f"{metric}_{key}_sd"] = round(statistics.pstdev(values), 4)
            averages = np.array([s[method][metric]["average_after_task"] for s in per_seed])
            table[method][f"{metric}_average_after_task"] = averages.mean(axis=0).round(4).tolist()
        table[method]["fit_s"] = round(statistics.mean(s[method]["fit_s"] for s in per_seed), 1)
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--seasons", type=int, nargs="+", default=[2019, 2020, 2021])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--replay-size", type=int, default=200)
    parser.add_argument("--positions", nargs="+", default=["days", "gdd"], choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=RESULTS / "continual.json")
    args = parser.parse_args(argv)
    result = {
        "root": args.root.name, "seasons": args.seasons, "seeds": args.seeds,
        "epochs": args.epochs, "replay_size": args.replay_size, "positions": {},
    }  # fmt: skip
    lines = ["| positions | method | final OA | BWT | FWT | forgetting | final macro-F1 | fit s |"]
    lines.append("|---" * 8 + "|")
    for positions in args.positions:
        per_seed = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                per_seed.append(run_seed(args, positions, args.seasons, seed, Path(tmp)))
        table = summarise(per_seed, args.methods)
        result["positions"][positions] = {"summary": table, "per_seed": per_seed}
        for method, row in table.items():
            lines.append(
                f"| {positions} | {method} | {row['oa_final']:.3f} ± {row['oa_final_sd']:.3f} "
                f"| {row['oa_bwt']:+.3f} | {row['oa_fwt']:+.3f} | {row['oa_forgetting']:.3f} "
                f"| {row['f1_macro_final']:.3f} | {row['fit_s']:.0f} |"
            )
    print("\n".join(lines), flush=True)
    write_results(result | {"machine": machine()}, args.out)
    return result


if __name__ == "__main__":
    main()
