"""The `cmap` command: a LightningCLI whose model and data are any `class_path`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from jsonargparse import ArgumentError
from pytorch_lightning.callbacks import LearningRateMonitor, ProgressBar
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.plugins.io import CheckpointIO

import cmap.data  # noqa: F401 (registers cmap's data modules: the CLI lists them, short names work)
from cmap.callbacks.progress import EpochLines, MapProgressBar
from cmap.config_check import check_config, config_files, short_parser_error
from cmap.errors import CmapError, ConfigError, DataError, causes
from cmap.io.checkpoint_io import AtomicCheckpointIO
from cmap.io.checkpoints import check_checkpoint, check_classes, newest_last
from cmap.io.outputs import check_writable_folder
from cmap.links import accepts, construct, link_data, set_writer
from cmap.tasks.base import Task

log = logging.getLogger(__name__)
EVALUATED = ("validate", "test", "predict")  # subcommands that need a trained model


class SaveConfig(SaveConfigCallback):
    """Lightning's: the resolved config.yaml in the run's log folder; with `logger: false`
    there is no run folder, and nothing is written (a second run in the same folder would
    otherwise meet the first one's config.yaml)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.logger is not None:
            super().setup(trainer, pl_module, stage)


class CMapCLI(LightningCLI):
    """LightningCLI with the model's input and output sizes following the data.

    The bands embedding's `in_bands`, a reconstruction head's `out_bands`, a classification
    head's `num_classes` and the task's `classes` and `bands` are set from the data module
    (`DATA_LINKS`), so nobody edits layer sizes when pointing a config at other data. When
    the model comes from a checkpoint (`--ckpt_path`), its sizes are the checkpoint's: data
    that does not match is refused with both sides named, except that `predict` keeps the
    checkpoint's classes whatever the data's (predictions need no labels).
    """

    def __init__(self, args: list[str] | None = None, run: bool = True):
        super().__init__(
            model_class=Task,
            save_config_callback=SaveConfig,
            subclass_mode_model=True,
            subclass_mode_data=True,
            # `--trainer.max_epoch` must not silently mean `max_epochs`; parser errors are
            # raised (and shortened by `parse_arguments`) rather than printed with the usage.
            parser_kwargs={"allow_abbrev": False, "exit_on_error": False},
            run=run,
            args=args,
        )

    # Private: LightningCLI's public `add_arguments_to_parser` is not told which subcommand's
    # parser it fills, and `--output` / `--overwrite` belong to `predict` alone.
    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            parser.add_argument(
                "--output",
                type=str | None,
                help="Where predictions go: the map GeoTIFF of a cube, the parquet file of "
                "points (sets the writer callback's `output`; adds a writer if none).",
            )
            parser.add_argument(
                "--overwrite", type=bool, default=False, help="Replace existing outputs."
            )
        return parser

    def parse_arguments(self, parser, args) -> None:
        """Lightning's, after checking the keys of the config files (`config_check`), with
        parser errors as one short `ConfigError`."""
        argv = list(sys.argv[1:] if args is None else args)
        subcommand = next((a for a in argv if a in self.subcommands()), None)
        sub = parser._subcommands_action._name_parser_map.get(subcommand) if subcommand else None
        if sub is not None:
            sections: dict[str, list[str]] = {}
            for action in sub._actions:
                head, _, rest = action.dest.partition(".")
                sections.setdefault(head, [])
                if rest and "." not in rest and head == "trainer":
                    sections[head].append(rest)
            for path in config_files(argv[argv.index(subcommand) + 1 :]):
                check_config(path, sections)
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            scope = sub or parser
            options = [o for a in scope._actions for o in a.option_strings]
            raise ConfigError(short_parser_error(str(err), options)) from None
        self._check_ckpt_path()

    def _check_ckpt_path(self) -> None:
        """`--ckpt_path last` resolved and the checkpoint checked, before LightningCLI reads
        its hyper-parameters (next, with torch): a truncated or foreign file gets a message
        instead of a traceback; evaluating without a checkpoint is refused."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        self._resolve_last(self.config[subcommand])
        path = self.config[subcommand].get("ckpt_path")
        if path:
            task = self.config[subcommand].model.get("class_path")
            check_classes(Path(path), check_checkpoint(Path(path)), task)
        elif subcommand in EVALUATED:
            raise DataError(
                None,
                f"`cmap {subcommand}` needs a trained model: give --ckpt_path CHECKPOINT "
                "(e.g. lightning_logs/version_0/checkpoints/last.ckpt)",
            )

    def before_instantiate_classes(self) -> None:
        """The checkpoint holds every weight: the starting weights a fine-tuning run loaded
        are not needed again (the file may be gone)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("ckpt_path") and accepts(config.model, "encoder_weights_path"):
            config.model["init_args.encoder_weights_path"] = None

    def instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        data_config = config.data
        if data_config is None or not data_config.get("class_path"):
            raise ConfigError("no data: the config needs a data section (--data CLASS ...)")
        data = construct(data_config)  # first, as the model's sizes follow it
        data = link_data(config, data, self.subcommand)
        if self.subcommand == "predict":
            if config.get("return_predictions") is None:
                # Writers save predictions as they come; keeping them all would grow with the map.
                config.return_predictions = False
            set_writer(config, data, config.get("output"), config.get("overwrite"))
        config.data = None  # already built: not a second time (a cube opens every file)
        try:
            super().instantiate_classes()
        except ValueError as err:  # a block refusing its arguments while being built
            *_, cause = causes(err)
            if isinstance(cause, CmapError):
                raise
            raise ConfigError(f"{_built(cause)} cannot be built: {cause}") from err
        finally:
            config.data = data_config  # the saved config.yaml keeps the data section
        self.datamodule = data
        if self.subcommand == "fit" and hasattr(self.model, "start_from_pretrained"):
            self.model.start_from_pretrained()  # a bad weights file stops before any output

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
        found = newest_last(Path(save_dir), name)
        if found is None:  # the first run of a job that is requeued with the same command
            print(
                f"cmap: no last.ckpt under {Path(save_dir) / name}: starting afresh",
                file=sys.stderr,
            )
            config.ckpt_path = None
            return
        config.ckpt_path = str(found)
        print(f"cmap: resuming from {found}", file=sys.stderr)

    # Private: the one place that knows both the running subcommand and its checkpoint when
    # the checkpoint's weights fail to load inside the trainer.
    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except RuntimeError as err:  # weights that do not fit the model their file describes
            if "Error(s) in loading state_dict" not in str(err):
                raise
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise DataError(
                self.config[subcommand].get("ckpt_path"),
                f"its weights do not fit the model its own settings build ({first}); the file "
                "is damaged or was edited",
            ) from err

    def after_fit(self) -> None:
        """Say where the run went: the best checkpoint and its score, the log folder."""
        trainer = self.trainer
        if not trainer.is_global_zero:
            return
        log_dir = getattr(trainer.logger, "log_dir", None)  # the logger's own: no collective
        best = trainer.checkpoint_callback
        if best is not None and best.best_model_path:
            score = best.best_model_score
            shown = f" ({best.monitor} {float(score):.4f})" if score is not None else ""
            log.info("best checkpoint: %s%s", best.best_model_path, shown)
        if log_dir:
            log.info("logs: %s (see them with: tensorboard --logdir %s)", log_dir, log_dir)

    def instantiate_trainer(self, **kwargs) -> object:
        """Lightning's, with checkpoints written atomically (`AtomicCheckpointIO`), cmap's
        progress in place of Lightning's bar (on a terminal, a bar that counts map windows
        when predicting a map; in a log, one line per epoch), and without a learning-rate
        monitor when there is no logger to write to."""
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        config = config["trainer"]
        listed = config.get("callbacks") or []
        listed = listed if isinstance(listed, list) else [listed]
        if config.get("logger") is False:
            kept = [c for c in listed if not isinstance(c, LearningRateMonitor)]
            if len(kept) < len(listed):
                log.info("logger: false, so learning rates are not logged")
            listed = kept
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in listed
        ):
            listed.append(MapProgressBar() if sys.stdout.isatty() else EpochLines())
        config["callbacks"] = listed
        logger = config.get("logger")
        folder = getattr(logger, "root_dir", None) or config.get("default_root_dir") or "."
        check_writable_folder(Path(folder))
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config["plugins"] = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)


def _built(error: BaseException) -> str:
    """The outermost cmap class whose constructor `error` came out of (e.g. the
    TransformerEncoder, rather than a layer inside it)."""
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
        if owner is not None and type(owner).__module__.startswith("cmap."):
            return type(owner).__name__
        tb = tb.tb_next
    return "the configuration"


def build(args: list[str]) -> CMapCLI:
    """Trainer, model and data module from `cmap`-style arguments (no subcommand), without
    running anything: for notebooks, benchmarks and tests."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # the caller's own arguments are not for the CLI
    try:
        return CMapCLI(args, run=False)
    finally:
        sys.argv = argv
