"""Progress: Lightning's bar counting map windows and pixels/s on a terminal, one line per
epoch in a log."""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar


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


SHOWN = ("/loss_epoch", "/loss", "/accuracy", "/f1_macro", "/mse")  # epoch metrics in a line


class EpochLines(ProgressBar):
    """Progress for logs rather than terminals (the `cmap` command's choice when stdout is not
    a terminal): one line per training epoch with its progress-bar metrics and duration, and
    one line per tenth of a map's windows, instead of bars redrawn many times a second."""

    def __init__(self):
        super().__init__()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _say(self, text: str) -> None:
        if self._enabled and self.trainer.is_global_zero:
            print(text, flush=True)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # after the epoch's validation
        values: dict[str, float] = {}
        for name, value in sorted(trainer.callback_metrics.items()):
            short = name.removesuffix("_epoch")  # an epoch mean wins over the last step's
            if not name.endswith(SHOWN) or value.numel() != 1:
                continue
            if short != name or short not in values:
                values[short] = float(value)
        shown = "  ".join(f"{name} {value:.4f}" for name, value in values.items())
        seconds = time.perf_counter() - self._epoch_start
        self._say(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  {shown}  {seconds:.1f} s"
        )

    def on_predict_start(self, trainer, pl_module) -> None:
        data = trainer.datamodule
        self._pixels, self._start, self._done = 0, time.perf_counter(), 0
        self._windows = len(data.pending_windows()) if getattr(data, "mappable", False) else 0
        self._next = 0.1

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not self._windows or "window_done" not in batch:
            return
        self._pixels += len(batch["pixel"])
        self._done += int(bool(batch["window_done"]))
        if self._done >= self._next * self._windows:
            rate = self._pixels / max(time.perf_counter() - self._start, 1e-9)
            self._say(f"predicting: {self._done}/{self._windows} windows, {rate:,.0f} pixels/s")
            self._next = (self._done / self._windows // 0.1 + 1) * 0.1
