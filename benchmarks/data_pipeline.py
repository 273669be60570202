"""Samples/s of the samples data pipeline: setup (read + index) and batch assembly.

    python benchmarks/data_pipeline.py [--points 4000] [--batch-size 256] [--root FOLDER]

Generates a synthetic samples folder (or reads --root), then times `setup` and one pass over
the training DataLoader in the main process (no workers), padding and masks included.
Prints the numbers and writes them to benchmarks/results/data_pipeline.json.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch
from _common import RESULTS, machine, write_results

from cmap.data import SITSDataModule
from cmap.data.demo import generate


def run(root: Path, batch_size: int, epochs: int) -> dict:
    start = time.perf_counter()
    dm = SITSDataModule(str(root), batch_size=batch_size)
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    loader = dm.train_dataloader()
    samples, dates, best = 0, 0, float("inf")
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in loader:
            samples += len(batch["class"])
            dates += batch["ts"].shape[1]
        best = min(best, time.perf_counter() - start)
    n = len(dm.datasets["train"])
    table = dm.datasets["train"].table
    return {
        "train_samples": n,
        "mean_dates": float(table.lengths.mean()),
        "bands": dm.num_bands,
        "batch_size": batch_size,
        "setup_s": round(setup_s, 3),
        "samples_per_s": round(n / best),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="samples folder (default: generated)")
    parser.add_argument("--points", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="passes; the fastest is reported")
    parser.add_argument("--out", type=Path, default=RESULTS / "data_pipeline.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "samples"
            generate(root, points=args.points, seasons=[2019, 2020, 2021], cube_size=0, seed=0)
        result = run(root, args.batch_size, args.epochs)
    result["root"] = str(args.root or f"synthetic --points {args.points}")
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
