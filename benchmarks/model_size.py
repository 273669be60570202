"""Which model for how many training series: the default against the reference Transformer.

    python benchmarks/model_size.py [--root PATH | --points 6000] [--sizes 1000 3000 10000]
        [--models transformer reference] [--seeds 0] [--max-epochs 10]

Without `--root`, the demo generator makes `--points` points over seasons 2019-2021 (three
series each; kept in a folder under the system's temp directory for later runs). Each size is
a stratified, seeded fraction of the training split (`fraction` of the data module; val and
test stay whole), trained with `configs/classifier.yaml` and either its own encoder
(`transformer`, d_model 128 x 2 layers) or the reference model
(`configs/models/transformer.yaml`, d_model 256 x 4 layers), as `accuracy.py` runs them: early
stopping on val macro-F1, test scores of the best-val checkpoint. `--max-epochs` caps training
so that the largest size fits on a CPU; the cap is stored with the results.

Prints a table and writes benchmarks/results/model_size.json (after every run, so a stopped
run keeps what it measured): per size and model, test macro-F1 (mean, sd, per seed), training
time, epochs run and series per second of training.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import RESULTS, machine, write_results
from _scores import summarise
from accuracy import DEFAULT, run_cmap

from cmap.data import SITSDataModule
from cmap.data.demo import generate


def demo_root(points: int) -> Path:
    """A demo samples folder with `points` points (made once, then reused)."""
    root = Path(tempfile.gettempdir()) / f"cmap_model_size_demo_{points}"
    if not (root / "meta.yaml").exists():
        generate(root, points=points, seasons=[2019, 2020, 2021], cube_size=0, seed=0)
    return root


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="a samples folder (default: the demo)")
    parser.add_argument("--points", type=int, default=6000, help="demo points without --root")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--models", nargs="+", default=["transformer", "reference"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "model_size.json")
    args = parser.parse_args(argv)
    root = args.root or demo_root(args.points)
    data = SITSDataModule(root=str(root))
    data.setup("fit")
    available = len(data.datasets["train"])
    run_args = argparse.Namespace(
        config=DEFAULT,
        extra=[],
        max_epochs=args.max_epochs,
        max_series=None,
        date_views=0,
        view_drop=0.0,
    )
    table: dict[str, dict] = {}
    result = {
        "root": root.name,
        "available_train_series": available,
        "seeds": args.seeds,
        "max_epochs": args.max_epochs,
        "runs": table,
    }
    for size in args.sizes:
        fraction = min(1.0, size / available)
        for model in args.models:
            runs = []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    extra = ["--data.init_args.fraction", str(fraction)]
                    run = run_cmap(root, model, seed, run_args, Path(tmp), extra)
                for key in ("probabilities", "target"):
                    run.pop(key)
                run["series_per_s"] = round(run["train_series"] * run["epochs"] / run["fit_s"], 1)
                runs.append(run | {"seed": seed})
            summary = summarise(runs) | {"train_series": runs[0]["train_series"]}
            summary["series_per_s"] = round(sum(r["series_per_s"] for r in runs) / len(runs), 1)
            table[f"{model}@{size}"] = summary
            print(size, model, {k: summary[k] for k in ("f1_macro", "fit_s")}, flush=True)
            write_results(result | {"machine": machine()}, args.out)  # a stopped run keeps these
    lines = ["| train series | model | macro-F1 (± sd) | fit s | epochs | series/s | params |"]
    lines.append("|---|---|---|---|---|---|---|")
    for key, row in table.items():
        model = key.split("@")[0]
        epochs = "/".join(str(r["epochs"]) for r in row["per_seed"])
        lines.append(
            f"| {row['train_series']} | {model} | {row['f1_macro']:.3f} ± "
            f"{row['f1_macro_sd']:.3f} | {row['fit_s']:.0f} | {epochs} | {row['series_per_s']} "
            f"| {row['params']:,} |"
        )
    print("\n".join(lines), flush=True)
    return result


if __name__ == "__main__":
    main()
