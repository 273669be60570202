"""What the Classifier and the AutoEncoder share."""

from __future__ import annotations

import logging

import pytorch_lightning as pl

from cmap.reports.tensorboard import summary_writer
from cmap.reports.worker import FigureWorker
from cmap.tasks.schedule import adamw_warmup_exponential

log = logging.getLogger(__name__)


class Task(pl.LightningModule):
    """An encoder-based task: optional compilation of `self.encoder` (hparam `compile`), one
    `_epoch_end(stage)` for the train/val/test epoch ends, and AdamW with the
    warm-up-then-exponential schedule of the hparams `min_lr`, `max_lr`, `warmup_epochs`,
    `lr_decay` and `wd`. Figures are drawn by a `FigureWorker` (another process), started on
    first use on rank 0 and finished (remaining figures drawn and written) when the stage
    ends."""

    _figure_worker: FigureWorker | None = None
    _said_no_figures = False

    def configure_model(self):
        if self.hparams.compile:
            self.encoder.compile(dynamic=True)

    def figures(self) -> FigureWorker | None:
        """This run's figure worker; None off rank 0, or with neither a TensorBoard logger
        nor `figures_dir`."""
        if not self.trainer.is_global_zero:
            return None
        if self._figure_worker is None:
            writer, out = summary_writer(self.logger), self.hparams.get("figures_dir")
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

    def _epoch_end(self, stage: str) -> None:
        raise NotImplementedError

    def on_train_epoch_end(self):
        self._epoch_end("train")

    def on_validation_epoch_end(self):
        self._epoch_end("val")

    def on_test_epoch_end(self):
        self._epoch_end("test")

    def prints_scores(self) -> bool:
        """`cmap validate` / `cmap test` print their scores, once."""
        trainer = self.trainer
        return (
            trainer.state.fn in ("validate", "test")
            and not trainer.sanity_checking
            and trainer.is_global_zero
        )

    def optimizer(self, groups: list[dict]) -> dict:
        hp = self.hparams
        return adamw_warmup_exponential(
            groups, hp.min_lr, hp.max_lr, hp.warmup_epochs, hp.lr_decay, hp.wd
        )
