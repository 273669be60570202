"""Checkpoint files: check them, find them, and read a trained encoder out of them."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from cmap.errors import DataError, preview

ENCODER = "encoder."
COMPILED = "_orig_mod."  # inserted by torch.compile(module) wrappers


def check_checkpoint(path: Path) -> dict:
    """The checkpoint at `path` (tensors memory-mapped); files that are not complete Lightning
    checkpoints are refused, saying why."""
    if path.is_dir():
        raise DataError(
            path,
            "is a folder; give a checkpoint file (.ckpt), or --ckpt_path last for the newest"
            " last.ckpt",
        )
    if not path.is_file():
        raise DataError(path, "checkpoint file not found")
    if not zipfile.is_zipfile(path):
        raise DataError(path, "is not a readable checkpoint (truncated, or not saved by PyTorch)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:  # torch's message would advise weights_only=False
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise DataError(
            path,
            f"holds Python objects besides weights{what}, which cmap never loads (they could run "
            "code); use a checkpoint saved by cmap, or re-save it with weights only",
        ) from None
    except Exception as err:
        raise DataError(path, f"cannot be read as a checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(path, "is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


TRUSTED = ("cmap.", "torch.", "pytorch_lightning.", "lightning.")  # classes a checkpoint may name
TRUST_ALL = "CMAP_TRUST_CHECKPOINT_CLASSES"


def check_classes(path: Path, checkpoint: dict, task: str | None) -> None:
    """The classes a checkpoint's hyper-parameters name are imported and built when it is
    loaded: only cmap's, torch's and Lightning's are, unless the environment variable
    CMAP_TRUST_CHECKPOINT_CLASSES=1 says the file is trusted; and the checkpoint's task must be
    the config's `task` (a class path)."""
    hparams = checkpoint.get("hyper_parameters") or {}
    named = sorted(set(_class_paths(hparams)))
    foreign = [c for c in named if not c.startswith(TRUSTED)]
    if foreign and os.environ.get(TRUST_ALL) != "1":
        raise DataError(
            path,
            f"names classes outside cmap, torch and Lightning ({preview(foreign)}), which "
            f"loading it would import and run; if you trust the file, set {TRUST_ALL}=1",
        )
    saved = hparams.get("_class_path")
    if task and saved and saved != task:
        raise DataError(
            path,
            f"holds a {saved} but the config builds a {task}; use the config it was trained "
            "with (an AutoEncoder's encoder is fine-tuned after `cmap extract`, with "
            "configs/finetune.yaml)",
        )


def _class_paths(value):
    """Every `class_path` / `_class_path` string in nested hyper-parameters."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("class_path", "_class_path") and isinstance(item, str):
                yield item
            else:
                yield from _class_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _class_paths(item)


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
    """(encoder tensors, {class_path, init_args}) of a checkpoint of any cmap task."""
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
