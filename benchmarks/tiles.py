"""Many tiles on a Dask LocalCluster (`cmap predict --tiles`): scaling over workers, memory
as tiles grow, and a projection to a Sentinel-2 tile-season and a country.

    python benchmarks/tiles.py [--size 160] [--models default ltae] [--workers 1 2] [--window 64]

For each model (the demo Transformer, `configs/models/ltae.yaml`; weights of one short epoch:
speed does not depend on them) it cuts 4 tiles of `size` pixels and 4 of 2 x `size` (4x the
pixels) from the demo cube (68 dates, 10 bands), then runs `cmap predict --tiles` on them
with each worker count (one torch thread per worker) and reads the manifest: wall seconds,
valid pixels, each tile's seconds and its process's peak memory.

Targets (issue 36): 2 workers >= 1.8x one worker on the 4 small tiles (`speedup`: the
command's wall time, with its fixed start, checks and cluster; `speedup_of_tiles`: the
busiest worker's seconds in tiles); peak memory per worker within 10 % when the tiles grow
4x. A tile's seconds are `start + pixels / rate` (start: the process, imports, checkpoint),
fitted from the two sizes; the steady rate per core projects a Sentinel-2 tile-season
(10 980 x 10 980 pixels, all valid) on a 32-core node (32 workers of one thread) and a
100-tile country on 10 such nodes, assuming one tile's rate per core holds on every core
(memory bandwidth and reading were not measured at that scale).
Writes benchmarks/results/tiles.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, machine, write_results

REPO = Path(__file__).resolve().parents[1]
S2_TILE = 10_980**2
NODE_CORES, COUNTRY_TILES, NODES = 32, 100, 10
MODELS = {"default": [], "ltae": ["--model", str(REPO / "configs" / "models" / "ltae.yaml")]}


def cmap(*args, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "cmap", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return done


def checkpoint(model: str, work: Path) -> Path:
    """A checkpoint of `model` after two training batches on the demo samples."""
    cmap(
        *("fit", "--config", REPO / "configs" / "demo.yaml", *MODELS[model]),
        *("--data.init_args.root", REPO / "data" / "demo", "--trainer.max_epochs", 1),
        *("--trainer.limit_train_batches", 2, "--trainer.limit_val_batches", 1),
        *("--trainer.logger.init_args.save_dir", work, "--trainer.enable_progress_bar", "false"),
        cwd=work,
    )
    return next(work.glob("lightning_logs/version_0/checkpoints/last.ckpt"))


def run(ckpt: Path, tiles: Path, out: Path, workers: int, window: int) -> dict:
    start = time.perf_counter()
    cmap(
        *("predict", "--config", REPO / "configs" / "predict_demo.yaml", "--ckpt_path", ckpt),
        *("--tiles", tiles / "T*", "--output", out, "--workers", workers, "--threads", 1),
        *("--data.init_args.window_size", window),
        cwd=out.parent,
    )
    seconds = time.perf_counter() - start
    records = json.loads((out / "manifest.json").read_text())["tiles"].values()
    pixels = sum(r["pixels"] for r in records)
    busy: dict[str, float] = {}
    for r in records:  # seconds each worker spent in its tiles
        busy[r["worker"]] = busy.get(r["worker"], 0.0) + r["seconds"]
    return {
        "workers": workers,
        "seconds": round(seconds, 2),
        "pixels": pixels,
        "pixels_per_s": round(pixels / seconds),
        "tile_seconds": [r["seconds"] for r in records],
        "tile_pixels": [r["pixels"] for r in records],
        "peak_rss_mb_per_worker": max(r["peak_rss_mb"] for r in records),
        "busiest_worker_s": round(max(busy.values()), 2),
    }


def main() -> None:
    from cmap.data.demo.tiles import write_tiles

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--window", type=int, default=64, help="map window side (pixels)")
    parser.add_argument("--out", type=Path, default=RESULTS / "tiles.json")
    args = parser.parse_args()
    result: dict = {"size": args.size, "window": args.window, "tiles": 4, "dates": 68}
    result["models"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            work = Path(tmp) / model
            work.mkdir()
            ckpt = checkpoint(model, work)
            numbers: dict = {}
            for size in (args.size, 2 * args.size):
                tiles = work / f"tiles{size}"
                write_tiles(REPO / "data" / "demo" / "cube", tiles, grid=2, size=size)
                for workers in args.workers if size == args.size else [max(args.workers)]:
                    key = f"{size}px_{workers}w"
                    numbers[key] = run(ckpt, tiles, work / f"maps_{key}", workers, args.window)
                    print(model, key, numbers[key], flush=True)
            small = numbers[f"{args.size}px_{min(args.workers)}w"]
            many = numbers[f"{args.size}px_{max(args.workers)}w"]
            large = numbers[f"{2 * args.size}px_{max(args.workers)}w"]
            numbers["speedup"] = round(small["seconds"] / many["seconds"], 3)
            numbers["speedup_of_tiles"] = round(
                small["busiest_worker_s"] / many["busiest_worker_s"], 3
            )
            numbers["peak_ratio_4x_pixels"] = round(
                large["peak_rss_mb_per_worker"] / many["peak_rss_mb_per_worker"], 3
            )
            # seconds = start + pixels / rate, from the mean tile of each size
            p1 = sum(many["tile_pixels"]) / 4
            s1 = sum(many["tile_seconds"]) / 4
            p2 = sum(large["tile_pixels"]) / 4
            s2 = sum(large["tile_seconds"]) / 4
            if s2 <= s1:  # too small to tell the start from the pixels
                numbers["projection"] = None
                result["models"][model] = numbers
                continue
            rate = (p2 - p1) / (s2 - s1)
            start = s1 - p1 / rate
            tile_hours = (start + S2_TILE / rate / NODE_CORES) / 3600
            numbers["projection"] = {
                "start_s": round(start, 2),
                "pixels_per_s_per_core": round(rate),
                "s2_tile_hours_on_32_cores": round(tile_hours, 2),
                "country_100_tiles_hours_on_10_nodes": round(COUNTRY_TILES / NODES * tile_hours, 1),
            }
            result["models"][model] = numbers
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
