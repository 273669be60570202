"""Samples/s and achieved FLOP/s of a full training step of the seed's reference model.

    python benchmarks/train_step.py [--batch-size 256] [--dates 70] [--bands 10] [--steps 10]
        [--device cpu|cuda] [--precision 32|bf16]

The model is the reference Transformer classifier (PixelEncoding [32, 64, 128, 256],
sinusoidal positions, d_model 256, 8 heads, 4 layers, max-pool head, focal loss, AdamW),
fed batches of `--dates` +- 10 valid dates. The FLOPs of one step (forward and backward) are
counted by `torch.utils.flop_counter`; achieved FLOP/s = FLOPs / median step time. The
practical limit is the best FLOP/s of plain matrix multiplies of the model's own shapes
([N*T, 256] x [256, 1024] and friends) measured in the same process and precision.
Writes benchmarks/results/train_step[_<device>].json.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from _common import RESULTS, machine, write_results
from torch.utils.flop_counter import FlopCounterMode

from cmap.models.decoders import MulticlassClassification
from cmap.models.embeddings.bands import PixelEncoding
from cmap.models.embeddings.positions import PositionalEncoding
from cmap.models.encoders.transformer import TransformerEncoder
from cmap.models.losses import FocalLoss

K = 7
D = 256


def batch(n: int, t: int, c: int, device: torch.device):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(max(t - 10, 1), t + 11, (n,), generator=g)
    width = int(lengths.max())
    mask = torch.arange(width)[None] < lengths[:, None]
    positions = torch.randint(0, 395, (n, width), generator=g).sort(dim=1).values * mask
    ts = torch.rand(n, width, c, generator=g) * mask[..., None]
    target = torch.randint(0, K, (n,), generator=g)
    return [x.to(device) for x in (ts, positions, mask, target)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, steps: int, device: torch.device, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_limit(rows: int, dtype: torch.dtype, device: torch.device, steps: int) -> dict:
    """Best FLOP/s over the model's matmul shapes (projections and feed-forward)."""
    best = {}
    for k, m in ((D, D), (D, 3 * D), (D, 4 * D), (4 * D, D)):
        a = torch.randn(rows, k, device=device, dtype=dtype)
        b = torch.randn(k, m, device=device, dtype=dtype)
        seconds = median_seconds(lambda a=a, b=b: a @ b, steps, device)
        best[f"{rows}x{k}x{m}"] = 2 * rows * k * m / seconds
    shape, flops = max(best.items(), key=lambda item: item[1])
    return {"matmul_shape": shape, "matmul_tflops": round(flops / 1e12, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dates", type=int, default=70)
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    encoder = TransformerEncoder(
        PositionalEncoding(D), PixelEncoding(args.bands, [32, 64, 128, D]), D, 8, 4
    )
    model = torch.nn.ModuleDict({"encoder": encoder, "head": MulticlassClassification(D, K)})
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = FocalLoss(2.0)
    ts, positions, mask, target = batch(args.batch_size, args.dates, args.bands, device)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    def autocast():
        if args.precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model["head"](model["encoder"](ts, positions, mask), mask)
        criterion(logits, target).backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    seconds = median_seconds(step, args.steps, device)
    achieved = flops / seconds
    rows = args.batch_size * ts.shape[1]
    limit = matmul_limit(rows, dtype, device, args.steps)
    result = {
        "device": args.device,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "padded_dates": ts.shape[1],
        "valid_dates_mean": round(float(mask.sum(1).float().mean()), 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_gflop": round(flops / 1e9, 2),
        "step_s": round(seconds, 4),
        "samples_per_s": round(args.batch_size / seconds),
        "achieved_tflops": round(achieved / 1e12, 4),
        **limit,
        "fraction_of_matmul_limit": round(achieved / (limit["matmul_tflops"] * 1e12), 3),
    }
    suffix = "" if args.device == "cpu" else f"_{args.device}_{args.precision}"
    write_results(result | {"machine": machine()}, args.out or RESULTS / f"train_step{suffix}.json")


if __name__ == "__main__":
    main()
