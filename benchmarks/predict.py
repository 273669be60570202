"""Crop-map prediction speed and memory: the full `cmap predict` path vs the model alone.

    python benchmarks/predict.py [--sizes 512 1024] [--dates 40] [--batch-size 4096]
        [--window 256] [--device cpu] [--format geotiff|netcdf]

Builds cubes of `size` x `size` pixels by tiling the demo cube (its first `--dates` dates:
real Sentinel-2-like values, clouds and nodata), then for each size, in a fresh process:
runs `cmap predict` with `configs/predict_demo.yaml`'s writer (class map + probabilities)
and the demo model (random weights: speed does not depend on them), and reports valid pixels
per second, the share of the run spent in the model's predict step (forward, softmax,
argmax: the rest is reading, packing, writing and the loop), and peak resident memory. The
reference is the same model's forward pass (with
softmax and argmax) over the very batches of the first four windows, held in memory.
Targets (issue 6): full path >= 85 % of the pure forward throughput; peak memory within
10 % between two sizes 4x apart. `--format netcdf` stores the tiled cube as one NetCDF-4 file
instead (all dates and bands, deflate, chunks of one date x 256 x 256: how openEO and xarray
write stacks), read by `Stack` (issue 20).
Writes benchmarks/results/predict.json (predict_netcdf.json with --format netcdf).
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
import rasterio
from _common import RESULTS, machine, peak_rss_mb, write_results

REPO = Path(__file__).resolve().parents[1]
DEMO_CUBE = REPO / "data" / "demo" / "cube"
CLASSES = "[other, ble_tendre, ble_dur, orge, colza, mais, tournesol]"


def tile_cube(out: Path, size: int, dates: int) -> None:
    """The demo cube's first `dates` dates tiled to size x size pixels."""
    out.mkdir(parents=True)
    for path in sorted(DEMO_CUBE.glob("*.tif"))[:dates]:
        with rasterio.open(path) as src:
            data, profile, names = src.read(), src.profile, src.descriptions
        reps = -(-size // data.shape[1])
        tiled = np.tile(data, (1, reps, reps))[:, :size, :size]
        profile |= {"width": size, "height": size, "blockxsize": 256, "blockysize": 256}
        with rasterio.open(out / path.name, "w", **profile) as dst:
            dst.write(tiled)
            dst.descriptions = names
    (out / "meta.yaml").write_text((REPO / "data" / "demo" / "meta.yaml").read_text())


def as_netcdf(cube: Path, out: Path) -> Path:
    """The tiled GeoTIFF cube as one NetCDF-4 file (deflate, chunks of 1 x 256 x 256)."""
    import xarray as xr

    from cmap.data.cubes.geotiff import Cube

    grid = Cube(cube)
    paths = sorted(cube.glob("*.tif"))
    stack = np.stack([rasterio.open(p).read() for p in paths])  # [T, C, H, W]
    xs = grid.transform.c + grid.transform.a * (np.arange(grid.width) + 0.5)
    ys = grid.transform.f + grid.transform.e * (np.arange(grid.height) + 0.5)
    ds = xr.Dataset(
        {
            b: (("time", "y", "x"), stack[:, c], {"grid_mapping": "spatial_ref"})
            for c, b in enumerate(grid.bands)
        },
        {"time": grid.dates.astype("datetime64[ns]"), "y": ys, "x": xs},
    )
    ds.coords["spatial_ref"] = xr.Variable((), 0, {"crs_wkt": grid.crs.to_wkt()})
    chunks = (1, min(256, grid.height), min(256, grid.width))
    encoding = {b: {"zlib": True, "complevel": 1, "chunksizes": chunks} for b in grid.bands}
    ds.to_netcdf(out, engine="h5netcdf", encoding=encoding)
    (out.parent / "meta.yaml").write_text((cube / "meta.yaml").read_text())
    return out


def predict(cube: Path, output: Path, batch: int, window: int, device: str) -> dict:
    """One `cmap predict` over the cube, in this process."""
    import torch

    from cmap.cli import build

    cli = build(
        [
            *("--config", str(REPO / "configs" / "predict_demo.yaml")),
            *("--data.init_args.cube", str(cube), "--data.init_args.window_size", str(window)),
            *("--data.init_args.batch_size", str(batch), "--trainer.logger", "false"),
            *("--trainer.default_root_dir", str(output.parent)),
            *("--trainer.callbacks.output", str(output), "--trainer.enable_progress_bar", "false"),
            *("--trainer.callbacks.quicklook", "false", "--trainer.accelerator", device),
            *("--model.init_args.classes", CLASSES),
            *("--model.init_args.decoder.init_args.num_classes", "7"),
            *("--model.init_args.encoder.init_args.position_encoder.init_args.max_len", "400"),
            *("--model.init_args.encoder.init_args.n_heads", "4"),
            *("--model.init_args.encoder.init_args.n_layers", "2"),
        ]
    )
    model_seconds = [0.0]
    step = cli.model.predict_step

    def timed_step(*args, **kwargs):  # the model's own share of the run
        begin = time.perf_counter()
        out = step(*args, **kwargs)
        model_seconds[0] += time.perf_counter() - begin
        return out

    cli.model.predict_step = timed_step
    start = time.perf_counter()
    cli.trainer.predict(cli.model, cli.datamodule, return_predictions=False)
    seconds = time.perf_counter() - start
    with rasterio.open(output) as src:
        valid = int((src.read(1) != 255).sum())
    peak = peak_rss_mb()
    # The model alone on the same batches, held in memory: those of the first windows.
    dataset = cli.datamodule.dataset
    dataset.skip = set(range(4, len(dataset.windows)))
    batches = [
        {k: v.to(device) for k, v in b.items() if k in ("ts", "positions", "mask")} for b in dataset
    ]
    model = cli.model.to(device).eval()
    pixels = sum(len(b["ts"]) for b in batches)
    with torch.inference_mode():
        model(batches[0])
        start = time.perf_counter()
        for b in batches:
            model(b).softmax(-1).argmax(-1).cpu()
        forward = pixels / (time.perf_counter() - start)
    return {
        "valid_pixels": valid,
        "seconds": round(seconds, 2),
        "pixels_per_s": round(valid / seconds),
        "model_share_of_run": round(model_seconds[0] / seconds, 3),
        "forward_pixels_per_s": round(forward),
        "forward_batches": len(batches),
        "peak_rss_mb": round(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--dates", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--format", choices=["geotiff", "netcdf"], default="geotiff")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    name = "predict.json" if args.format == "geotiff" else "predict_netcdf.json"
    args.out = args.out or RESULTS / name
    if args.child:  # one measurement, in a fresh process (peak memory of this size alone)
        result = predict(
            args.child, args.child.parent / "map.tif", args.batch_size, args.window, args.device
        )
        print(json.dumps(result))
        return
    result: dict = {"dates": args.dates, "batch_size": args.batch_size, "window": args.window}
    result |= {"device": args.device, "format": args.format, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            cube = Path(tmp) / str(size) / "cube"
            tile_cube(cube, size, args.dates)
            if args.format == "netcdf":
                cube = as_netcdf(cube, cube.parent / "cube.nc")
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--child", str(cube)],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode:
                sys.exit(child.stderr[-3000:])
            numbers = json.loads(child.stdout.strip().splitlines()[-1])
            numbers["full_over_forward"] = round(
                numbers["pixels_per_s"] / numbers["forward_pixels_per_s"], 3
            )
            result["sizes"][str(size)] = numbers
            print(size, numbers, flush=True)
    peaks = [v["peak_rss_mb"] for v in result["sizes"].values()]
    result["peak_rss_ratio_largest_smallest"] = round(peaks[-1] / peaks[0], 3)
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
