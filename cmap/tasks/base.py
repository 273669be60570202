"""What the tasks (Classifier, AutoEncoder, Contrastive, ProtoNet) share."""

from __future__ import annotations

import abc
import logging

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from cmap.errors import ConfigError
from cmap.reports.tensorboard import summary_writer
from cmap.reports.worker import FigureWorker
from cmap.tasks.optim import AdamW, WarmupExponentialLR
from cmap.tasks.weights import check_blocks

log = logging.getLogger(__name__)


class Task(pl.LightningModule, abc.ABC):
    """An encoder-based task: its `encoder` and `decoder` (checked against each other), the
    optimizer and schedule made by the `optimizer` and `lr_scheduler` callables, optional
    compilation of the encoder (`compile`), one `_step(batch, stage, batch_idx)` for the
    train/val/test steps, one `_epoch_end(stage)` for the epoch ends, and `log_loss`. Figures
    are drawn by a `FigureWorker` (another process), started on first use on rank 0 (and into
    `figures_dir` when set) and finished (remaining figures drawn and written) when the stage
    ends. Each task saves its hyper-parameters right after calling this constructor, and
    passes the options below on as keyword arguments (`**options`).

    Args:
        optimizer: makes the optimizer from parameter groups (YAML: a `class_path` and its
            `init_args` but the parameters); default `AdamW` (lr 1e-3, weight decay 1e-4).
        lr_scheduler: makes the schedule from the optimizer, stepped per epoch; default
            `WarmupExponentialLR` (linear warm-up to the optimizer's lr, then decay).
        compile: compile the encoder with `torch.compile` (dynamic shapes) when the run
            starts; worth it on GPUs for long runs. Weights and checkpoints are unchanged.
        figures_dir: also save every figure there as PNG.
        log_figures: draw the task's figures (confusion matrices, label distributions,
            attention, reconstructions, views) for TensorBoard.
    """

    _figure_worker: FigureWorker | None = None
    _said_no_figures = False

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module | None,
        optimizer: OptimizerCallable = AdamW,
        lr_scheduler: LRSchedulerCallable = WarmupExponentialLR,
        compile: bool = False,
        figures_dir: str | None = None,
        log_figures: bool = True,
    ):
        super().__init__()
        check_blocks(encoder, decoder)
        self.encoder, self.decoder = encoder, decoder
        self._make_optimizer, self._make_scheduler = optimizer, lr_scheduler
        self.compile_encoder = compile
        self.figures_dir = figures_dir
        self.log_figures = log_figures

    def configure_model(self):
        if self.compile_encoder:
            self.encoder.compile(dynamic=True)

    def figures(self) -> FigureWorker | None:
        """This run's figure worker; None off rank 0, or with neither a TensorBoard logger
        nor `figures_dir`."""
        if not self.trainer.is_global_zero:
            return None
        if self._figure_worker is None:
            writer, out = summary_writer(self.logger), self.figures_dir
            if writer is None and not out:
                if not self._said_no_figures:
                    log.info("no TensorBoard logger and no figures_dir: figures are not drawn")
                    self._said_no_figures = True
                return None
            self._figure_worker = FigureWorker(writer, out)
        return self._figure_worker

    def teardown(self, stage: str) -> None:
        worker, self._figure_worker = self._figure_worker, None
        if worker is not None:
            worker.close()

    @abc.abstractmethod
    def _step(self, batch: dict, stage: str, batch_idx: int = 0):
        """The loss of a train, val or test batch (logged by the task); None skips it."""

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", batch_idx)

    def test_step(self, batch, batch_idx):
        self._step(batch, "test", batch_idx)

    @abc.abstractmethod
    def _epoch_end(self, stage: str) -> None:
        """Compute, log and reset the stage's metrics; hand the epoch to the reports."""

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_epoch_end(self):
        self._epoch_end("test")

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """`<stage>/loss`: per step in training, and per epoch, the mean over every
        process's batches weighted by `batch_size`."""
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            batch_size=batch_size,
            sync_dist=True,
        )

    def refuse_unlabelled(self, stage, instead: str) -> None:
        """Stop before the first step when a task that learns from labels is given unlabelled
        data to fit, validate or test; `instead` says what to do."""
        data = self.trainer.datamodule
        stage = getattr(stage, "value", stage)  # Lightning passes an enum of the stage names
        if stage in ("fit", "validate", "test") and not getattr(data, "labelled", True):
            raise ConfigError(
                f"the {type(self).__name__} needs labels to {stage}, but this "
                f"{type(data).__name__} serves unlabelled series (a cube, or labelled: false); "
                + instead
            )

    def prints_scores(self) -> bool:
        """`cmap validate` / `cmap test` print their scores, once."""
        trainer = self.trainer
        return (
            trainer.state.fn in ("validate", "test")
            and not trainer.sanity_checking
            and trainer.is_global_zero
        )

    def _optimizers(self, groups: list[dict]) -> dict:
        """The task's optimizer over parameter `groups` (dicts with `params`, optional `name`
        and `lr_factor`, which scales that group's learning rate) and its schedule, stepped
        every epoch."""
        optimizer = self._make_optimizer([g for g in groups if g["params"]])
        for group in optimizer.param_groups:
            group["lr"] = optimizer.defaults["lr"] * group.pop("lr_factor", 1.0)
        return {"optimizer": optimizer, "lr_scheduler": self._make_scheduler(optimizer)}
