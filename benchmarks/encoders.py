"""Training-step speed of the encoders, and what attention capture costs.

    python benchmarks/encoders.py [--batch-size 256] [--dates 60] [--bands 10] [--steps 10]

Times a full training step (forward, focal loss, backward, AdamW step) on random inputs
with random valid lengths in [T/2, T]:
- cmap's TransformerEncoder (seed reference size: d_model 256, 8 heads, 4 layers) against
  the same embeddings followed by a plain `torch.nn.TransformerEncoder` of the same size and
  the same head: the ratio shows what cmap's wrapper (attention capture available, masking,
  input checks) costs when attention is not requested (target >= 0.95);
- the Exchanger and L-TAE encoders at the sizes of configs/models/.
Also reports inference samples/s (no grad) and parameter counts. Writes
benchmarks/results/encoders.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _common import RESULTS, machine, write_results
from torch import nn

from cmap.models.decoders import AttentionClassification, MulticlassClassification
from cmap.models.embeddings.bands import PixelEncoding
from cmap.models.embeddings.positions import PositionalEncoding
from cmap.models.encoders.exchanger import ExchangerEncoder
from cmap.models.encoders.ltae import LTAEEncoder
from cmap.models.encoders.transformer import TransformerEncoder
from cmap.models.losses import FocalLoss

K = 7


class PlainTransformer(nn.Module):
    """The same embeddings, then torch's own TransformerEncoder: the reference for overhead."""

    def __init__(self, bands: int, d_model: int, heads: int, layers: int):
        super().__init__()
        self.bands_encoder = PixelEncoding(bands, [32, 64, 128, d_model])
        self.position_encoder = PositionalEncoding(d_model, max_len=1000)
        self.dropout = nn.Dropout(0.1)
        layer = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out_dim = d_model

    def forward(self, ts, positions, mask):
        x = self.bands_encoder(ts, mask) + self.position_encoder(positions, mask)
        return self.encoder(self.dropout(x), src_key_padding_mask=~mask)


def encoders(bands: int) -> dict[str, tuple[nn.Module, type]]:
    def pixels(d):
        return PixelEncoding(bands, [32, 64, 128, 256][: 3 if d == 128 else 4])

    return {
        "transformer": (
            TransformerEncoder(PositionalEncoding(256), pixels(256), 256, 8, 4),
            MulticlassClassification,
        ),
        "plain_torch_transformer": (PlainTransformer(bands, 256, 8, 4), MulticlassClassification),
        "exchanger": (
            ExchangerEncoder(PositionalEncoding(128), pixels(128), 128, 8, 8, 2),
            AttentionClassification,
        ),
        "ltae": (
            LTAEEncoder(PositionalEncoding(128, tau=1000), pixels(128), 128, 16, 8, [256, 128]),
            MulticlassClassification,
        ),
    }


def inputs(n: int, t: int, c: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 2, t + 1, (n,), generator=g)
    mask = torch.arange(t)[None] < lengths[:, None]
    positions = torch.randint(0, 395, (n, t), generator=g).sort(dim=1).values * mask
    ts = torch.rand(n, t, c, generator=g)
    target = torch.randint(0, K, (n,), generator=g)
    return [x.to(device) for x in (ts, positions, mask, target)]


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, steps: int, device: torch.device) -> float:
    """Median seconds of `fn` over `steps` calls after 2 warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(encoder, head_cls, data, steps, device) -> dict:
    ts, positions, mask, target = data
    model = nn.ModuleDict({"encoder": encoder, "head": head_cls(encoder.out_dim, K)}).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = FocalLoss(2.0)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        logits = model["head"](model["encoder"](ts, positions, mask), mask)
        criterion(logits, target).backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        model["head"](model["encoder"](ts, positions, mask), mask)

    model.train()
    train_s = time_it(train_step, steps, device)
    model.eval()
    infer_s = time_it(infer, steps, device)
    n = len(ts)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_samples_per_s": round(n / train_s),
        "inference_samples_per_s": round(n / infer_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dates", type=int, default=60)
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="timed steps; the median is kept")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoders.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = inputs(args.batch_size, args.dates, args.bands, device)
    result = {"batch_size": args.batch_size, "dates": args.dates, "bands": args.bands}
    result["device"] = args.device
    for name, (encoder, head_cls) in encoders(args.bands).items():
        result[name] = measure(encoder, head_cls, data, args.steps, device)
        print(name, result[name], flush=True)
    result["transformer_vs_plain_torch_train"] = round(
        result["transformer"]["train_samples_per_s"]
        / result["plain_torch_transformer"]["train_samples_per_s"],
        3,
    )
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
