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
from pytorch_lightning.callbacks import ModelCheckpoint

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
BEST = "best.ckpt"
PERSONAL = "personal.ckpt"


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


class KeptOptimizer(pl.Callback):
    """The optimizer's state (e.g. Adam's moments) carried from one round's local epochs to
    the next, instead of starting from zero every round; listed before `RoundSchedule`, so
    the schedule sets this round's learning rate after the state is back."""

    def __init__(self, states: list[dict] | None):
        self.states = states

    def on_train_start(self, trainer, pl_module) -> None:
        if self.states:
            for optimizer, state in zip(trainer.optimizers, self.states):
                optimizer.load_state_dict(state)

    def on_train_end(self, trainer, pl_module) -> None:
        self.states = [optimizer.state_dict() for optimizer in trainer.optimizers]


class CmapClient(NumPyClient):
    """Trains a cmap task on its own data for a few epochs per round, starting from the
    round's global values of the shared tensors; the data never leave it.

    Args:
        name: the client's name (its metrics and folder are named after it).
        args: its cmap arguments, as for `cmap fit` (`--config client.yaml ...`).
        folder: where it writes `global.ckpt` (the final global model with its own
            unshared parts: a normal cmap checkpoint for `cmap test`, `predict`, `extract`)
            and `best.ckpt` (the round's global model that scored best on its val split);
            with personal epochs, `personal.ckpt` (the global model fine-tuned on its data).
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
        self.optimizer = KeptOptimizer(None)
        self.best = -1.0  # the best val macro-F1 of a global model so far
        self.accelerator = self.cli.trainer.accelerator.__class__.__name__.replace(
            "Accelerator", ""
        ).lower()

    @property
    def classes(self) -> list[str]:
        return list(self.model.classes)

    def _trainer(self, callbacks: list, epochs: int = 1, validate=False) -> pl.Trainer:
        self.folder.mkdir(parents=True, exist_ok=True)  # per_class_val.csv of the last round
        return pl.Trainer(
            default_root_dir=self.folder,
            max_epochs=epochs,
            accelerator=self.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=validate,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            inference_mode=False,  # training follows validation on the same module
            limit_val_batches=0 if epochs and not validate else None,
            callbacks=callbacks,
        )

    def get_parameters(self, config) -> list[np.ndarray]:
        return self.shared.get()

    def fit(self, parameters, config):
        """Local epochs from the global shared tensors; FedProx's term when `proximal_mu`;
        the optimizer's state of the last round when `keep_optimizer`."""
        self.shared.set(parameters)
        round_, epochs = int(config["round"]), int(config["local_epochs"])
        seed = int(config.get("seed", 0)) + 1000 * round_ + zlib.crc32(self.name.encode()) % 997
        pl.seed_everything(seed, workers=True, verbose=False)
        if not int(config.get("keep_optimizer", 0)):
            self.optimizer.states = None
        callbacks: list[pl.Callback] = [self.optimizer, RoundSchedule((round_ - 1) * epochs)]
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
            "buffers": self.shared.buffers(),  # the server's momentum leaves them alone
        }
        if proximal:
            metrics["proximal"] = proximal.penalty(self.model)
        return self.shared.get(), len(self.data.datasets["train"]), metrics

    def evaluate(self, parameters, config):
        """The global model (with this client's unshared parts) on the client's val split;
        saved as `best.ckpt` when it beats the earlier rounds, and on the last round as
        `global.ckpt`."""
        self.shared.set(parameters)
        with quiet():
            trainer = self._trainer([], epochs=0)
            (scores,) = trainer.validate(self.model, self.data, verbose=False)
        f1 = float(scores["val/f1_macro"])
        names = [BEST] * (f1 > self.best) + [CHECKPOINT] * bool(config.get("final"))
        self.best = max(self.best, f1)
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            with warnings.catch_warnings():  # Lightning's note on torch.load's weights_only
                warnings.simplefilter("ignore")
                trainer.save_checkpoint(self.folder / name)
        if config.get("final"):
            log.info("client %s: global model saved to %s", self.name, self.folder / CHECKPOINT)
        metrics = {
            "client": self.name,
            "f1_macro": f1,
            "accuracy": float(scores["val/accuracy"]),
        }
        if config.get("final") and int(config.get("personal_epochs", 0)):
            metrics["personal_f1_macro"] = self.personalise(config)
        return float(scores["val/loss"]), len(self.data.datasets["val"]), metrics

    def personalise(self, config) -> float:
        """The final global model fine-tuned on this client's data alone for `personal_epochs`
        (the learning-rate schedule goes on from the federation's last epoch), kept at its
        best val epoch as `personal.ckpt`: local adaptation after federated training.
        Returns that epoch's val macro-F1."""
        epochs, done = int(config["personal_epochs"]), int(config["epochs_done"])
        seed = int(config.get("seed", 0)) + zlib.crc32(self.name.encode()) % 997
        pl.seed_everything(seed, workers=True, verbose=False)
        best = ModelCheckpoint(
            dirpath=self.folder,
            filename=PERSONAL.removesuffix(".ckpt"),
            monitor="val/f1_macro",
            mode="max",
            enable_version_counter=False,
        )
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's note on torch.load's weights_only
            trainer = self._trainer([RoundSchedule(done), best], epochs, validate=True)
            trainer.fit(self.model, self.data)
        log.info("client %s: fine-tuned model saved to %s", self.name, best.best_model_path)
        return float(best.best_model_score)
