"""A record of what a run used: package versions, command line and a fingerprint of the data."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

import pytorch_lightning as pl
import yaml

from cmap.data.series.cache import state_hash
from cmap.io.atomic import atomic_path

PACKAGES = (
    "cmap",
    "torch",
    "pytorch-lightning",
    "torchmetrics",
    "jsonargparse",
    "numpy",
    "pyarrow",
    "rasterio",
    "safetensors",
)


class RunInfo(pl.Callback):
    """Writes `run_info.yaml` next to the run's logs (rank 0): Python and package versions,
    the command line, and the data fingerprint (a hash of every input file's path, size and
    modification time, with the list of files), so a result can be traced to its inputs."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log_dir = trainer.log_dir  # a collective call under DDP: every rank must make it
        if not trainer.is_global_zero or log_dir is None:
            return
        info = {
            "stage": str(getattr(stage, "value", stage)),
            "command": sys.argv,
            "python": platform.python_version(),
            "packages": {name: _version(name) for name in PACKAGES},
        }
        data = trainer.datamodule
        sources = data.source_files() if hasattr(data, "source_files") else None
        if sources is not None:
            root, files = sources
            info["data"] = {
                "root": str(Path(root).resolve()),
                "fingerprint": state_hash(files, {}),
                "files": [str(p.relative_to(root)) for p in files],
            }
        path = Path(log_dir) / "run_info.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as partial:
            partial.write_text(yaml.safe_dump(info, sort_keys=False))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
