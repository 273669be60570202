"""What the Classifier and the AutoEncoder share."""

from __future__ import annotations

import pytorch_lightning as pl

from cmap.tasks.schedule import adamw_warmup_exponential


class Task(pl.LightningModule):
    """An encoder-based task: optional compilation of `self.encoder` (hparam `compile`), one
    `_epoch_end(stage)` for the train/val/test epoch ends, and AdamW with the
    warm-up-then-exponential schedule of the hparams `min_lr`, `max_lr`, `warmup_epochs`,
    `gamma` and `wd`."""

    def configure_model(self):
        if self.hparams.compile:
            self.encoder.compile(dynamic=True)

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
            groups, hp.min_lr, hp.max_lr, hp.warmup_epochs, hp.gamma, hp.wd
        )
