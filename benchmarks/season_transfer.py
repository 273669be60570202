"""Do thermal positions carry a model to a warmer season?

    python benchmarks/season_transfer.py [--root data/demo] [--warm 2020] [--seeds 0 1 2]
        [--epochs 30] [--time-shift D]

Trains the demo classifier on every season of the samples folder but the warm one, twice:
with day positions (`configs/demo.yaml`) and with growing-degree-day positions
(`configs/thermal.yaml`), same model, epochs and seeds. Tests each on the test split of the
training seasons (in-season) and of the warm season (shifted). Reports macro-F1 (mean of the
seeds, and per seed). `--time-shift D` adds day positions trained with random shifts of up
to D days (`time_shift`, as `days_shift`). Writes benchmarks/results/season_transfer.json.

Target (issue 7): GDD keeps the shifted-season macro-F1 within 3 points of in-season, and
beats day positions on the shifted season by at least 3 points.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import RESULTS, machine, write_results

from cmap.cli import build
from cmap.data.meta import read_meta

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"days": REPO / "configs" / "demo.yaml", "gdd": REPO / "configs" / "thermal.yaml"}
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def test_f1(cli, seasons: list[int]) -> float:
    """Test macro-F1 of the trained model on the test split restricted to `seasons`."""
    data = cli.datamodule
    other = type(data)(**(dict(data.hparams) | {"seasons": seasons}))
    scores = cli.trainer.test(cli.model, other, verbose=False)[0]
    return round(float(scores["test/f1_macro"]), 4)


def run(root: Path, positions: str, train: list[int], warm: int, seed: int, args, folder):
    shift = ["--data.init_args.time_shift", str(args.time_shift)]
    epochs = args.epochs
    cli = build(
        [
            *("--config", str(CONFIGS[positions.removesuffix("_shift")])),
            *("--data.init_args.root", str(root), *(shift if "shift" in positions else [])),
            *("--data.init_args.seasons", str(train), "--data.init_args.seed", str(seed)),
            *("--seed_everything", str(seed), "--trainer.max_epochs", str(epochs), *QUIET),
            *("--trainer.logger", "false", "--trainer.enable_checkpointing", "false"),
            "--trainer.callbacks=[]",
            *("--trainer.default_root_dir", str(folder)),
            *("--model.init_args.log_figures", "false"),
            *("--model.init_args.attention_every_n_epochs", "0"),
            *("--model.init_args.embeddings_every_n_epochs", "0"),
        ]
    )
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    return {
        "in_season": test_f1(cli, train),
        "shifted": test_f1(cli, [warm]),
        "fit_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--warm", type=int, help="the shifted season (default: meta.yaml's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--time-shift", type=int, default=0, help="days (0: no days_shift)")
    parser.add_argument("--out", type=Path, default=RESULTS / "season_transfer.json")
    args = parser.parse_args()
    generator = read_meta(args.root).get("generator", {})
    warm = args.warm or generator.get("warm_season")
    seasons = generator.get("seasons")
    if warm is None or not seasons:
        parser.error("give --warm (the samples folder's meta.yaml does not name it)")
    train = [s for s in seasons if s != warm]
    result: dict = {"root": str(args.root), "train_seasons": train, "shifted_season": warm}
    result |= {"epochs": args.epochs, "seeds": args.seeds, "time_shift": args.time_shift}
    for positions in ("days", "gdd") + (("days_shift",) if args.time_shift else ()):
        with tempfile.TemporaryDirectory() as tmp:
            runs = [
                run(args.root, positions, train, warm, seed, args, Path(tmp) / str(seed))
                for seed in args.seeds
            ]
        result[positions] = {
            key: round(statistics.mean(r[key] for r in runs), 4) for key in ("in_season", "shifted")
        } | {"per_seed": runs}
        print(positions, result[positions], flush=True)
    result["gdd_gap_points"] = round(
        100 * (result["gdd"]["in_season"] - result["gdd"]["shifted"]), 1
    )
    result["gdd_over_days_shifted_points"] = round(
        100 * (result["gdd"]["shifted"] - result["days"]["shifted"]), 1
    )
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
