"""Callbacks the tests inject into `cmap` runs."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    """SIGKILL the process when training reaches global step `step` (a pre-empted job)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtPredictBatch(pl.Callback):
    """SIGKILL the process when prediction reaches batch `batch` (a pre-empted job)."""

    def __init__(self, batch: int):
        self.batch = batch

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordTrainIndices(pl.Callback):
    """Write the sample indices each process trains on: `train_indices_rank<R>.txt` (cwd)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(f"train_indices_rank{trainer.global_rank}.txt", "a") as out:
            out.write(f"{trainer.current_epoch} " + " ".join(map(str, batch["index"].tolist())))
            out.write("\n")
