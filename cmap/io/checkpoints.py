"""Checkpoint files: check them, find them, and read a trained encoder out of them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from cmap.errors import DataError

ENCODER = "encoder."
COMPILED = "_orig_mod."  # inserted by torch.compile(module) wrappers


def check_checkpoint(path: Path) -> dict:
    """The checkpoint at `path` (tensors memory-mapped); files that are not complete Lightning
    checkpoints are refused, saying why."""
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    if not zipfile.is_zipfile(path):
        raise DataError(path, "is not a readable checkpoint (truncated, or not saved by PyTorch)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise DataError(path, f"cannot be read as a checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(path, "is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def _newest(folder: Path, pattern: str) -> Path | None:
    """The most recently modified file below `folder` matching `pattern`, if any."""
    found = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def find_checkpoint(path: Path) -> Path:
    """A checkpoint file, or below a folder: the newest `best.ckpt`, else the best checkpoint
    recorded in the newest `last.ckpt` (its ModelCheckpoint's `best_model_path`, e.g.
    `epoch=29-f1=0.7617.ckpt`), else that `last.ckpt`."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(path, "no such checkpoint file or folder")
    best = _newest(path, "**/best.ckpt")
    if best is not None:
        return best
    last = _newest(path, "**/last.ckpt")
    if last is not None:
        return recorded_best(last) or last
    raise DataError(path, "holds no best.ckpt or last.ckpt; give a checkpoint file")


def recorded_best(last: Path) -> Path | None:
    """The best checkpoint a `last.ckpt` records (where the run wrote it, else beside it)."""
    states = check_checkpoint(last).get("callbacks")
    for state in (states or {}).values():
        recorded = state.get("best_model_path") if isinstance(state, dict) else None
        if recorded:
            for candidate in (Path(recorded), last.parent / Path(recorded).name):
                if candidate.is_file() and candidate.name != last.name:
                    return candidate
    return None


def newest_last(save_dir: Path, name: str) -> Path | None:
    """The newest `last.ckpt` of the runs logged under `save_dir/name`, if any."""
    return _newest(Path(save_dir), f"{name}/version_*/checkpoints/last.ckpt")


def encoder_from_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(encoder tensors, {class_path, init_args}) of a Classifier or AutoEncoder checkpoint."""
    checkpoint = check_checkpoint(path)
    tensors = {
        key[len(ENCODER) :].replace(COMPILED, ""): value.contiguous()
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(ENCODER)
    }
    if not tensors:
        raise DataError(path, "has no encoder weights (no 'encoder.*' entry in its state_dict)")
    spec = checkpoint.get("hyper_parameters", {}).get("encoder")
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise DataError(
            path,
            "does not record its encoder's class_path and init_args (it was not trained "
            "with the cmap command)",
        )
    return tensors, {"class_path": spec["class_path"], "init_args": spec.get("init_args", {})}
