"""The `cmap` command: a LightningCLI whose model and data are any `class_path`."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import traceback
import zipfile
from pathlib import Path

import torch
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningCLI

from cmap.data.errors import DataError

# Model settings that follow the data: (path under the model's config, data attribute).
# A path applies only where the configured class takes that argument, so one table serves
# the Classifier and the AutoEncoder, classification and reconstruction heads.
DATA_LINKS = (
    ("encoder.init_args.bands_encoder.init_args.in_bands", "num_bands"),
    ("encoder.init_args.in_bands", "num_bands"),  # encoders without a bands embedding
    ("decoder.init_args.out_bands", "num_bands"),
    ("decoder.init_args.num_classes", "num_classes"),
    ("classes", "classes"),
    ("bands", "channels"),
)


class CMapCLI(LightningCLI):
    """LightningCLI with the model's input and output sizes following the data.

    The bands embedding's `in_bands`, a reconstruction head's `out_bands`, a classification
    head's `num_classes` and the task's `classes` and `bands` are set from the data module
    (`DATA_LINKS`), so nobody edits layer sizes when pointing a config at other data. When
    the model comes from a checkpoint (`--ckpt_path`), its sizes are the checkpoint's: data
    that does not match is refused with both sides named, except that `predict` keeps the
    checkpoint's classes whatever the data's (predictions need no labels).
    """

    def instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        data_config = config.data
        data = _construct(data_config)  # first, as the model's sizes follow it
        self._link_data(config, data)
        if self.subcommand == "predict" and config.get("return_predictions") is None:
            # Writers save predictions as they come; keeping them all would grow with the map.
            config.return_predictions = False
        config.data = None  # already built: not a second time (a cube opens every file)
        try:
            super().instantiate_classes()
        finally:
            config.data = data_config  # the saved config.yaml keeps the data section
        self.datamodule = data

    def _link_data(self, config, data) -> None:
        model = config.model
        checkpoint = config.get("ckpt_path")
        for path, attribute in DATA_LINKS:
            owner, _, name = f"init_args.{path}".rpartition(".")
            spec = model.get(owner.rpartition(".")[0]) if owner != "init_args" else model
            if not _accepts(spec, name):
                continue
            value, current = getattr(data, attribute, None), model.get(f"init_args.{path}")
            if value is None:  # e.g. a cube for prediction has bands but no classes
                continue
            if checkpoint and current is not None and current != value:
                if self.subcommand == "predict" and attribute in ("classes", "num_classes"):
                    continue
                if attribute != "bands" or len(current) != len(value):
                    raise DataError(
                        Path(checkpoint),
                        f"the model was trained with {name} = {_show(current)} but the data "
                        f"gives {_show(value)}; use data with the model's bands and classes "
                        "(to start a new model from these weights, extract the encoder with "
                        "`cmap extract` and set encoder_weights_path)",
                    )
            model[f"init_args.{path}"] = value

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyper-parameters here; check the file first so a
        # truncated or foreign file gets a message instead of a traceback from torch.
        subcommand = self.config.get("subcommand")
        if subcommand:
            self._resolve_last(self.config[subcommand])
            path = self.config[subcommand].get("ckpt_path")
            if path and Path(path).is_file():
                check_checkpoint(Path(path))
        super()._parse_ckpt_path()

    @staticmethod
    def _resolve_last(config) -> None:
        """`--ckpt_path last` means the newest `last.ckpt` of the previous runs in the logger's
        folder (Lightning alone looks only in the new run's own, still empty, folder); with no
        earlier run, training starts afresh, so one command serves a job and its requeues."""
        if config.get("ckpt_path") != "last":
            return
        logger = config.trainer.get("logger")
        init = logger.get("init_args") if hasattr(logger, "get") else None
        save_dir = (
            (init.get("save_dir") if init else None)
            or config.trainer.get("default_root_dir")
            or "."
        )
        name = (init.get("name") if init else None) or "lightning_logs"
        found = sorted(
            Path(save_dir).glob(f"{name}/version_*/checkpoints/last.ckpt"),
            key=lambda p: p.stat().st_mtime,
        )
        if not found:  # the first run of a job that is requeued with the same command
            print(
                f"cmap: no last.ckpt under {Path(save_dir) / name}: starting afresh",
                file=sys.stderr,
            )
            config.ckpt_path = None
            return
        config.ckpt_path = str(found[-1])
        print(f"cmap: resuming from {found[-1]}", file=sys.stderr)


def import_object(path: str):
    """The class named by a resolved `class_path` (module.Name)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _construct(spec):
    """Instantiate a `class_path` + `init_args` spec whose arguments are plain values."""
    return import_object(spec.class_path)(**spec.get("init_args", Namespace()).as_dict())


def _accepts(spec, name: str) -> bool:
    """Whether the class of a `class_path` spec takes an argument `name`."""
    if spec is None or not spec.get("class_path"):
        return False
    return name in inspect.signature(import_object(spec.class_path)).parameters


def _show(value) -> str:
    return f"{len(value)} {value}" if isinstance(value, list) else str(value)


def check_checkpoint(path: Path) -> None:
    """Refuse files that are not complete Lightning checkpoints, saying why."""
    if not zipfile.is_zipfile(path):
        raise DataError(path, "is not a readable checkpoint (truncated, or not saved by PyTorch)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise DataError(path, f"cannot be read as a checkpoint ({err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(path, "is not a Lightning checkpoint (it has no state_dict)")


def build(args: list[str]) -> CMapCLI:
    """Trainer, model and data module from `cmap`-style arguments (no subcommand), without
    running anything: for notebooks, benchmarks and tests."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # the caller's own arguments are not for the CLI
    try:
        return CMapCLI(subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)
    finally:
        sys.argv = argv


# `cmap <tool> ...` commands besides LightningCLI's fit/validate/test/predict.
TOOLS = {
    "extract": "cmap.io.extract:main",
    "quicklook": "cmap.io.maps:quicklook_main",
    "samples": "cmap.io.samples:main",
}


def main(args: list[str] | None = None) -> None:
    """Entry point of `cmap` and `python -m cmap.main`."""
    argv = sys.argv[1:] if args is None else args
    if argv[:1] and argv[0] in TOOLS:
        module, function = TOOLS[argv[0]].split(":")
        getattr(importlib.import_module(module), function)(argv[1:])
        return
    exits_on_user_error(CMapCLI)(subclass_mode_model=True, subclass_mode_data=True, args=args)


def exits_on_user_error(function):
    """`function`, but a user error (see `user_error`) ends the process with one line,
    `cmap: error: ...`, and exit code 2 instead of a traceback."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as err:
            cause = user_error(err)
            if cause is None:
                raise
            print(f"cmap: error: {cause}", file=sys.stderr)
            sys.exit(2)

    return run


PACKAGE = Path(__file__).resolve().parent
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError)


def user_error(err: BaseException | None) -> BaseException | None:
    """The error behind `err` that a user can act on, if any: a `DataError`, a missing file
    (from any library: the message names it), or a ValueError / existing file raised by cmap's
    own checks (a model block refusing its settings). jsonargparse and Lightning wrap errors
    raised at instantiation, hence the walk."""
    while err is not None:
        if isinstance(err, (DataError, FileNotFoundError)):
            return err
        if isinstance(err, USER_ERRORS) and err.__traceback__ is not None:
            origin = Path(traceback.extract_tb(err.__traceback__)[-1].filename).resolve()
            if PACKAGE in origin.parents:
                return err
        err = err.__cause__ or err.__context__
    return None
