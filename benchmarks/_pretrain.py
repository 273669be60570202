"""Shared by the benchmark scripts: masked-reconstruction pretraining of a classifier config's
encoder (`configs/pretrain.yaml`'s task and schedule) on a samples folder's series."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from cmap.cli import build
from cmap.commands import extract
from cmap.io.checkpoints import find_checkpoint

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRETRAIN_SERIES = 300_000  # series seen in pretraining with epochs 0 (auto)
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
NO_REPORTS = [  # no figures, attention maps or projector embeddings: benchmarks time the fit
    *QUIET,
    *("--model.init_args.log_figures", "false"),
    *("--model.init_args.attention_every_n_epochs", "0"),
    *("--model.init_args.embeddings_every_n_epochs", "0"),
]


def pretrain_config(classifier: Path, out: Path) -> Path:
    """`configs/pretrain.yaml` with the encoder of the `classifier` config (and a
    reconstruction head as wide as it); written to `out`."""
    config = yaml.safe_load((CONFIGS / "pretrain.yaml").read_text())
    encoder = yaml.safe_load(classifier.read_text())["model"]["init_args"]["encoder"]
    head = config["model"]["init_args"]["decoder"]["init_args"]
    width = encoder["init_args"]["d_model"]
    head["in_dim"], head["widths"] = width, [width]
    config["model"]["init_args"]["encoder"] = encoder
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def pooled_splits(root: Path, out: Path) -> Path:
    """A copy of `root` whose training split holds the series of every split (labels are not
    read in pretraining); val stays as it is. A region's own unlabelled pixels, test ones
    included, are what a user pretrains on before mapping it."""
    splits = [p for p in sorted(root.iterdir()) if (p / "features.pq").exists()]
    names = set.intersection(*({f.name for f in s.glob("*.pq")} for s in splits))
    (out / "train").mkdir(parents=True)
    for name in sorted(names - {"labels.pq"}):
        tables = [pq.read_table(s / name) for s in splits]
        pq.write_table(pa.concat_tables(tables, promote_options="default"), out / "train" / name)
    shutil.copytree(root / "val", out / "val")
    for path in root.iterdir():
        if path.is_file():
            shutil.copy(path, out / path.name)
    return out


def pretrain(root: Path, config: Path, epochs: int, seed: int, folder: Path) -> tuple[Path, dict]:
    """Pretrain `config`'s AutoEncoder on `root`'s training split for `epochs` (0: enough to
    see PRETRAIN_SERIES series, within [20, 200] epochs) and extract the encoder; return the
    safetensors path and what was done."""
    cli = build(
        [
            *("--config", str(config), "--data.init_args.root", str(root)),
            *("--seed_everything", str(seed), *QUIET),
            *("--trainer.logger.init_args.save_dir", str(folder / "logs")),
            *("--model.init_args.log_figures", "false"),
        ]
    )
    cli.datamodule.setup("fit")
    series = len(cli.datamodule.datasets["train"])
    epochs = epochs or min(max(PRETRAIN_SERIES // series, 20), 200)
    cli.trainer.fit_loop.max_epochs = epochs
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = round(time.perf_counter() - start, 1)
    extract(find_checkpoint(folder / "logs"), folder / "pretrained")
    weights = folder / "pretrained" / "encoder.safetensors"
    return weights, {"pretrain_series": series, "pretrain_epochs": epochs, "pretrain_s": seconds}
