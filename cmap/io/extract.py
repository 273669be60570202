"""`cmap extract`: a trained encoder's weights and configuration, out of a checkpoint.

Writes `encoder.safetensors` (the encoder's tensors, keys as in the encoder's own
`state_dict`) and `encoder.yaml` (its `class_path` and `init_args`), from a checkpoint of
either task, for `Classifier(encoder_weights_path=...)`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from cmap.cli import check_checkpoint, exits_on_user_error
from cmap.data.errors import DataError

PREFIX = "encoder."
COMPILED = "_orig_mod."  # inserted by torch.compile(module) wrappers


def find_checkpoint(path: Path) -> Path:
    """A checkpoint file, or the newest `best.ckpt` (else `last.ckpt`) below a folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint or folder")
    for name in ("best.ckpt", "last.ckpt"):
        found = sorted(path.glob(f"**/{name}"), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    raise DataError(path, "holds no best.ckpt or last.ckpt; give a checkpoint file")


def encoder_from_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(encoder tensors, {class_path, init_args}) of a Classifier or AutoEncoder checkpoint."""
    check_checkpoint(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {
        key[len(PREFIX) :].replace(COMPILED, ""): value.contiguous()
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(PREFIX)
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


def write_encoder(
    tensors: dict[str, torch.Tensor], spec: dict, output: Path, source: Path, overwrite: bool
) -> tuple[Path, Path]:
    """Write `output/encoder.safetensors` and `output/encoder.yaml`, each to a temporary name
    first, then moved into place; existing files are kept unless `overwrite`."""
    weights, config = output / "encoder.safetensors", output / "encoder.yaml"
    existing = [p for p in (weights, config) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{existing[0]}: already exists; choose another --output or pass --overwrite"
        )
    try:
        output.mkdir(parents=True, exist_ok=True)
        partial_weights = weights.with_name(weights.name + ".partial")
        partial_config = config.with_name(config.name + ".partial")
        save_file(tensors, str(partial_weights), metadata={"source": str(source)})
        header = f"# encoder of {source}\n"
        partial_config.write_text(header + yaml.safe_dump(spec, sort_keys=False))
    except OSError as err:
        raise DataError(output, f"cannot be written ({err.strerror or err})") from err
    os.replace(partial_weights, weights)
    os.replace(partial_config, config)
    return weights, config


@exits_on_user_error
def main(args: list[str] | None = None) -> None:
    """Entry point of `cmap extract` and `cmap-extract`."""
    parser = argparse.ArgumentParser(
        prog="cmap extract",
        description="Write a checkpoint's encoder as encoder.safetensors + encoder.yaml.",
    )
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="a .ckpt file, or a folder: its newest best.ckpt (else last.ckpt) is used",
    )
    parser.add_argument(
        "--output", type=Path, help="folder for the two files (default: the checkpoint's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    options = parser.parse_args(args)
    checkpoint = find_checkpoint(options.checkpoint)
    tensors, spec = encoder_from_checkpoint(checkpoint)
    paths = write_encoder(
        tensors, spec, options.output or checkpoint.parent, checkpoint, options.overwrite
    )
    count = sum(t.numel() for t in tensors.values())
    print(f"{checkpoint}: {len(tensors)} encoder tensors ({count:,} values), {spec['class_path']}")
    for path in paths:
        print(f"wrote {path}")
