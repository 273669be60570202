"""The data pipeline alone, its share of a training step, and memory on a split larger than RAM.

    python benchmarks/data_loading.py [--series 100000] [--dates 70] [--bands 10]
        [--batch-size 256] [--train-steps 20] [--large 2000000]

1. Pipeline: samples/s of `SeriesDataset` batches (gather, padding, masks) through a
   DataLoader in the main process (no workers), on series of `--dates` +- 10 valid dates.
2. Waiting for data: a training loop of the seed's reference Transformer (d_model 256,
   8 heads, 4 layers) fed by that DataLoader; reports the fraction of the step time spent
   waiting for the next batch (target < 5 %).
3. With --large N: writes a prepared-split cache of N series (`cmap.data.series.cache` layout,
   random values, streamed to disk) in a child process, then iterates one shuffled epoch over
   it in a fresh child process and reports its peak resident memory (target < 1.5 GB for
   2 million series) and samples/s.
Writes benchmarks/results/data_loading.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine, peak_rss_mb, write_results
from torch.utils.data import DataLoader

from cmap.data.series.cache import COMPLETE, load
from cmap.data.series.dataset import SeriesDataset, collate_batch
from cmap.data.series.table import SeriesTable
from cmap.models.decoders import MulticlassClassification
from cmap.models.embeddings.bands import PixelEncoding
from cmap.models.embeddings.positions import PositionalEncoding
from cmap.models.encoders.transformer import TransformerEncoder
from cmap.models.losses import FocalLoss

K = 7


def lengths_for(n: int, dates: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(max(dates - 10, 1), dates + 11, n).astype(np.int64)


def random_table(n: int, dates: int, bands: int, seed: int = 0) -> SeriesTable:
    rng = np.random.default_rng(seed)
    lengths = lengths_for(n, dates, rng)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = int(lengths.sum())
    return SeriesTable(
        values=rng.random((rows, bands), dtype=np.float32),
        dates=np.sort(rng.integers(18000, 18395, rows).astype(np.int32)),
        starts=starts,
        lengths=lengths,
        first_day=np.full(n, 17990, np.int32),
        seasons=np.full(n, 2019, np.int32),
        labels=rng.integers(0, K, n),
        poi_ids=np.arange(n),
    )


def loader(table: SeriesTable, batch_size: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    return DataLoader(
        SeriesDataset(table),
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        collate_fn=collate_batch,
    )


def pipeline(table: SeriesTable, batch_size: int) -> dict:
    start = time.perf_counter()
    samples = sum(len(batch["class"]) for batch in loader(table, batch_size))
    return {"samples_per_s": round(samples / (time.perf_counter() - start))}


def waiting_share(table: SeriesTable, batch_size: int, steps: int) -> dict:
    encoder = TransformerEncoder(
        PositionalEncoding(256), PixelEncoding(table.values.shape[1]), 256, 8, 4
    )
    head = MulticlassClassification(256, K)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = FocalLoss()
    waiting = total = 0.0
    batches = iter(loader(table, batch_size))
    for step in range(steps + 1):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        features = encoder(batch["ts"], batch["positions"], batch["mask"])
        criterion(head(features, batch["mask"]), batch["class"]).backward()
        optimizer.step()
        t2 = time.perf_counter()
        if step:  # the first step warms up
            waiting += t1 - t0
            total += t2 - t0
    return {
        "train_steps": steps,
        "step_s": round(total / steps, 4),
        "data_wait_fraction": round(waiting / total, 5),
    }


def write_cache(folder: Path, n: int, dates: int, bands: int) -> None:
    """A cache entry of n random series, written in chunks (never all in memory)."""
    rng = np.random.default_rng(0)
    lengths = lengths_for(n, dates, rng)
    rows = int(lengths.sum())
    folder.mkdir(parents=True)
    per_sample = {
        "starts": np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        "lengths": lengths,
        "first_day": np.full(n, 17990, np.int32),
        "seasons": np.full(n, 2019, np.int32),
        "labels": rng.integers(0, K, n),
        "poi_ids": np.arange(n),
    }
    for name, array in per_sample.items():
        np.save(folder / f"{name}.npy", array)
    values = np.lib.format.open_memmap(folder / "values.npy", "w+", np.float32, (rows, bands))
    days = np.lib.format.open_memmap(folder / "dates.npy", "w+", np.int32, (rows,))
    chunk = 10_000_000
    for lo in range(0, rows, chunk):
        hi = min(rows, lo + chunk)
        values[lo:hi] = rng.random((hi - lo, bands), dtype=np.float32)
        days[lo:hi] = rng.integers(18000, 18395, hi - lo)
        values.flush()
        days.flush()
    del values, days
    (folder / COMPLETE).touch()


def iterate_cache(folder: Path, batch_size: int) -> dict:
    table = load(folder)
    start = time.perf_counter()
    samples = sum(len(batch["class"]) for batch in loader(table, batch_size))
    seconds = time.perf_counter() - start
    return {
        "series": len(table),
        "rows": int(table.values.shape[0]),
        "cache_gb": round(sum(f.stat().st_size for f in folder.iterdir()) / 1e9, 2),
        "samples_per_s": round(samples / seconds),
        "epoch_s": round(seconds, 1),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def large(n: int, args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "train-large"
        common = [sys.executable, __file__, "--dates", str(args.dates), "--bands", str(args.bands)]
        subprocess.run([*common, "--write-cache", str(folder), "--large", str(n)], check=True)
        out = Path(tmp) / "large.json"
        subprocess.run(
            [
                *common,
                "--iterate-cache",
                str(folder),
                "--batch-size",
                str(args.batch_size),
                "--out",
                str(out),
            ],
            check=True,
        )
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--dates", type=int, default=70)
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--large", type=int, default=0, help="series of the larger-than-RAM test")
    parser.add_argument("--tmp", default=None, help="folder for the large cache (needs space)")
    parser.add_argument("--write-cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--iterate-cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "data_loading.json")
    args = parser.parse_args()
    if args.write_cache:
        return write_cache(args.write_cache, args.large, args.dates, args.bands)
    if args.iterate_cache:
        args.out.write_text(json.dumps(iterate_cache(args.iterate_cache, args.batch_size)))
        return None
    table = random_table(args.series, args.dates, args.bands)
    result = {
        "series": args.series,
        "mean_dates": round(float(table.lengths.mean()), 1),
        "bands": args.bands,
        "batch_size": args.batch_size,
        "pipeline": pipeline(table, args.batch_size),
        "training": waiting_share(table, args.batch_size, args.train_steps),
    }
    if args.large:
        result["large"] = large(args.large, args)
    write_results(result | {"machine": machine()}, args.out)
    return None


if __name__ == "__main__":
    main()
