"""What the training reports cost: epoch times of the demo config with and without them.

    python benchmarks/reporting.py [--epochs 16] [--every 2] [--repeats 3]

Trains the demo config `--repeats` times each way, alternated, for `--epochs` epochs: bare
(no figures, attention or embeddings) and with every report on (confusion matrices and label
distributions each epoch; attention per class and projector embeddings every `--every`
epochs). Medians are taken over all runs' epochs of a kind. An epoch's time
runs from its start to the next epoch's start (training, validation and every epoch-end
hook). Reports the overhead on epochs with attention and embeddings and on the others
(targets: < 10 % and < 3 %), the overhead on the whole fit (which ends by drawing the figures
not drawn yet) and how many images reached the event file. Writes
benchmarks/results/reporting.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from _common import RESULTS, machine, write_results
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cmap.cli import build
from cmap.reports.classification import scheduled

REPO = Path(__file__).resolve().parents[1]


class EpochClock(pl.Callback):
    def __init__(self):
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module):
        self.starts.append(time.perf_counter())

    def durations(self) -> list[float]:
        return [b - a for a, b in zip(self.starts[:-1], self.starts[1:])]


def run(root: Path, epochs: int, reports: bool, every: int, folder: Path) -> list[float]:
    options = (
        [
            "--model.init_args.attention_every_n_epochs",
            str(every),
            "--model.init_args.embeddings_every_n_epochs",
            str(every),
        ]
        if reports
        else [
            "--model.init_args.log_figures",
            "false",
            "--model.init_args.attention_every_n_epochs",
            "0",
            "--model.init_args.embeddings_every_n_epochs",
            "0",
        ]
    )
    cli = build(
        [
            *("--config", str(REPO / "configs" / "demo.yaml"), "--data.init_args.root", str(root)),
            *("--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false"),
            *("--trainer.logger.init_args.save_dir", str(folder), *options),
        ]
    )
    clock = EpochClock()
    cli.trainer.callbacks.append(clock)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)  # returns once every figure is written
    fit_s = time.perf_counter() - start
    events = EventAccumulator(cli.trainer.log_dir, size_guidance={"images": 0}).Reload()
    images = sum(len(events.Images(tag)) for tag in events.Tags()["images"])
    return clock.durations(), fit_s, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="alternated bare/report runs")
    parser.add_argument("--root", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--out", type=Path, default=RESULTS / "reporting.json")
    args = parser.parse_args()
    bare, full, bare_fit, full_fit = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # alternated, so drifts of the machine hit both
            epochs, seconds, _ = run(args.root, args.epochs, False, args.every, Path(tmp) / "b")
            bare.append(epochs)
            bare_fit.append(seconds)
            epochs, seconds, images = run(args.root, args.epochs, True, args.every, Path(tmp) / "r")
            full.append(epochs)
            full_fit.append(seconds)
    heavy = [e for e in range(1, args.epochs) if scheduled(e, args.every)]
    light = [e for e in range(1, args.epochs) if e not in heavy]  # epoch 0 warms up

    def overhead(epochs: list[int]) -> float | None:
        if not epochs:
            return None
        with_reports = statistics.median(times[e] for times in full for e in epochs)
        without = statistics.median(times[e] for times in bare for e in epochs)
        return round(with_reports / without - 1, 4)

    result = {
        "config": f"configs/demo.yaml on {args.root}",
        "epochs": args.epochs,
        "repeats": args.repeats,
        "attention_and_embeddings_epochs": heavy,
        "bare_epoch_s": [[round(t, 2) for t in times] for times in bare],
        "reports_epoch_s": [[round(t, 2) for t in times] for times in full],
        "overhead_attention_embeddings_epochs": overhead(heavy),
        "overhead_other_epochs": overhead(light),
        # The whole fit, including the figures still being drawn at its end.
        "bare_fit_s": [round(t, 2) for t in bare_fit],
        "reports_fit_s": [round(t, 2) for t in full_fit],
        "overhead_fit": round(statistics.median(full_fit) / statistics.median(bare_fit) - 1, 4),
        "images_written": images,
    }
    write_results(result | {"machine": machine()}, args.out)


if __name__ == "__main__":
    main()
