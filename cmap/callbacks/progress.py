"""Lightning's progress bar, which during a map prediction counts windows and pixels/s."""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import TQDMProgressBar


class MapProgressBar(TQDMProgressBar):
    """`TQDMProgressBar` (training, validation and point predictions as usual); when `predict`
    goes through a cube's windows, its bar counts the windows this process writes and shows
    the pixels predicted per second. The `cmap` command uses it in place of Lightning's."""

    def on_predict_start(self, trainer, pl_module) -> None:
        super().on_predict_start(trainer, pl_module)
        self._pixels, self._start, self._windows = 0, time.perf_counter(), None
        data = trainer.datamodule
        if getattr(data, "mappable", False):
            self._windows = len(data.pending_windows())
            self.predict_progress_bar.reset(total=self._windows)
            self.predict_progress_bar.set_description("Predicting windows")

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if self._windows is None:
            super().on_predict_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._windows is None:
            super().on_predict_batch_end(
                trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
            )
            return
        self._pixels += len(batch["pixel"])
        if bool(batch["window_done"]):
            rate = self._pixels / max(time.perf_counter() - self._start, 1e-9)
            self.predict_progress_bar.set_postfix_str(f"{rate:,.0f} pixels/s", refresh=False)
            self.predict_progress_bar.update(1)
