"""A federated client: one cmap run (the client's usual config and data) as a Flower client."""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from flwr.client import NumPyClient

from cmap.cli import build
from cmap.errors import ConfigError
from cmap.federated.proximal import ProximalTerm, RoundSchedule
from cmap.federated.shared import SharedParameters

log = logging.getLogger(__name__)

QUIET = [
    *("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"),
    *("--model.init_args.log_figures", "false"),
    *("--model.init_args.attention_every_n_epochs", "0"),
    *("--model.init_args.embeddings_every_n_epochs", "0"),
]
CHECKPOINT = "global.ckpt"


@contextlib.contextmanager
def quiet():
    """A round's Trainer without its banner, stop lines and printed scores."""
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    level = lightning.level
    lightning.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        lightning.setLevel(level)


class CmapClient(NumPyClient):
    """Trains a cmap task on its own data for a few epochs per round, starting from the
    round's global values of the shared tensors; the data never leave it.

    Args:
        name: the client's name (its metrics and folder are named after it).
        args: its cmap arguments, as for `cmap fit` (`--config client.yaml ...`).
        folder: where it writes `global.ckpt` (the final global model with its own
            unshared parts: a normal cmap checkpoint for `cmap test`, `predict`, `extract`).
        share: module names whose tensors the federation averages.
        local_batch_norm: keep batch-norm layers local (FedBN), see `SharedParameters`.
    """

    def __init__(
        self, name: str, args: list[str], folder: Path, share: list[str], local_batch_norm=False
    ):
        self.name, self.folder = name, Path(folder)
        self.cli = build([*args, *QUIET])
        self.model, self.data = self.cli.model, self.cli.datamodule
        if not hasattr(self.model, "classes"):
            raise ConfigError(f"client {name}: federated training takes a Classifier config")
        self.data.setup("fit")
        self.shared = SharedParameters(self.model, share, f"client {name}", local_batch_norm)
        self.accelerator = self.cli.trainer.accelerator.__class__.__name__.replace(
            "Accelerator", ""
        ).lower()

    @property
    def classes(self) -> list[str]:
        return list(self.model.classes)

    def _trainer(self, callbacks: list, epochs: int = 1) -> pl.Trainer:
        self.folder.mkdir(parents=True, exist_ok=True)  # per_class_val.csv of the last round
        return pl.Trainer(
            default_root_dir=self.folder,
            max_epochs=epochs,
            accelerator=self.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0 if epochs else None,
            callbacks=callbacks,
        )

    def get_parameters(self, config) -> list[np.ndarray]:
        return self.shared.get()

    def fit(self, parameters, config):
        """Local epochs from the global shared tensors; FedProx's term when `proximal_mu`."""
        self.shared.set(parameters)
        round_, epochs = int(config["round"]), int(config["local_epochs"])
        seed = int(config.get("seed", 0)) + 1000 * round_ + zlib.crc32(self.name.encode()) % 997
        pl.seed_everything(seed, workers=True, verbose=False)
        callbacks: list[pl.Callback] = [RoundSchedule((round_ - 1) * epochs)]
        mu = float(config.get("proximal_mu", 0.0))
        proximal = ProximalTerm(mu, self.shared.tensors()) if mu > 0 else None
        callbacks += [proximal] if proximal else []
        start = time.perf_counter()
        with quiet():
            trainer = self._trainer(callbacks, epochs)
            trainer.fit(self.model, self.data)
        metrics = {
            "client": self.name,
            "loss": float(trainer.callback_metrics["train/loss_epoch"]),
            "fit_s": round(time.perf_counter() - start, 2),
        }
        if proximal:
            metrics["proximal"] = proximal.penalty(self.model)
        return self.shared.get(), len(self.data.datasets["train"]), metrics

    def evaluate(self, parameters, config):
        """The global model (with this client's unshared parts) on the client's val split;
        on the last round it is also saved as `global.ckpt`."""
        self.shared.set(parameters)
        with quiet():
            trainer = self._trainer([], epochs=0)
            (scores,) = trainer.validate(self.model, self.data, verbose=False)
        if config.get("final"):
            self.folder.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():  # Lightning's note on torch.load's weights_only
                warnings.simplefilter("ignore")
                trainer.save_checkpoint(self.folder / CHECKPOINT)
            log.info("client %s: global model saved to %s", self.name, self.folder / CHECKPOINT)
        metrics = {
            "client": self.name,
            "f1_macro": float(scores["val/f1_macro"]),
            "accuracy": float(scores["val/accuracy"]),
        }
        return float(scores["val/loss"]), len(self.data.datasets["val"]), metrics
