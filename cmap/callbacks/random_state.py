"""Random state in checkpoints, so a resumed run continues exactly as the original would."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch

KEY = "cmap_random_state"


def _plain(numpy_state: tuple) -> list:
    """NumPy's state with plain Python types (checkpoints load with `weights_only`)."""
    name, keys, pos, has_gauss, gauss = numpy_state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


class RandomStateCheckpoint(pl.Callback):
    """Saves the global random states (Python, NumPy, torch, CUDA) with every checkpoint and
    restores them when training resumes from one.

    Lightning restores weights, optimizer, schedulers and loop counters but not the random
    state that dropout and data loading draw from; with this callback (in the default configs)
    a run killed at any step and resumed with `--ckpt_path last` gives the same final weights
    and metrics as an uninterrupted run in deterministic mode on one process. The state is
    applied when training starts, after the sanity-check validation, which draws from it too.
    Under DDP every process restores the state rank 0 saved.
    """

    def __init__(self):
        self._loaded: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = {
            "python": list(random.getstate()),
            "numpy": _plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(KEY)

    def on_train_start(self, trainer, pl_module) -> None:
        state, self._loaded = self._loaded, None
        if state is None:
            return
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
