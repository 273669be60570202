"""Supervised crop-type classification (training from scratch or fine-tuning)."""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCohenKappa,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)

from cmap.errors import ConfigError
from cmap.models.base import ClassificationHead, Encoder, Head, Loss
from cmap.models.linked import linked
from cmap.reports.classification import ClassificationReports
from cmap.reports.metrics import print_metrics
from cmap.reports.tables import per_class_scores
from cmap.tasks.base import Task
from cmap.tasks.class_weights import (
    balanced_weights,
    check_weighable,
    class_prior,
    weights_by_name,
)
from cmap.tasks.continual import Distillation, load_previous
from cmap.tasks.data_state import DataState, MeanProbabilities
from cmap.tasks.mixup import Mixup
from cmap.tasks.weights import load_encoder_weights

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")
MODEL_INPUTS = ("ts", "positions", "days", "mask", "class")


def _metrics(num_classes: int) -> MetricCollection:
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "f1_weighted": MulticlassF1Score(num_classes, average="weighted"),
            "kappa": MulticlassCohenKappa(num_classes),
            # per-class precision, recall and F1 are read off the (synchronised) matrix
            "confusion": MulticlassConfusionMatrix(num_classes),
        }
    )


class Classifier(DataState, Task):
    """Encoder + classification head trained with `criterion`.

    Args:
        encoder: maps (ts [N, T, C], positions [N, T], mask [N, T]) to [N, T, D].
        decoder: maps ([N, T, D], mask) to logits [N, K].
        criterion: loss on (logits [N, K], target [N]); class weights go to its `weight`.
        classes: class names, index = logit (the CLI links them from the data).
        bands: input channel names in order (linked from the data), kept in the checkpoint
            so that data with the bands in another order is put in the model's order.
        classes_weights: per-class loss weights by class name (missing classes weigh 1). If
            no name is a class, the weights were meant for other data: a warning is logged and
            none is applied; if only some names are unknown, that is an error (a typo).
            "balanced": when training starts, weigh class k by sqrt(n / (K n_k)) from its n_k
            training series (a softened inverse frequency), saved in checkpoints.
        encoder_weights_path: safetensors file of pretrained encoder weights to start from
            (`cmap extract` writes it from a checkpoint of either task).
        freeze_encoder: keep the encoder fixed (weights, and batch-norm statistics: it stays
            in eval mode) and train the head only: a linear probe of pretrained features.
        encoder_lr_factor: the encoder's learning rate is the head's times this factor
            (e.g. 0.1 to fine-tune pretrained weights gently).
        mixup: mix each training batch with a shuffled copy of itself (inputs on a common
            grid of dates, or pooled features: manifold mixup), see `Mixup`.
        init_from: a Classifier checkpoint (e.g. last season's) to start from: encoder and
            head, the head's rows matched by class name (new classes start fresh).
        distillation: keep what the `init_from` model knew (`Distillation`, LwF).
        attention_every_n_epochs, max_attention_samples: log attention maps per class (from
            up to that many validation samples) at epochs 1, 1 + n, ... (0: never).
        embeddings_every_n_epochs, max_embeddings: log the pooled features of up to that
            many validation samples for TensorBoard's projector on the same schedule.
        options: `optimizer`, `lr_scheduler`, `compile`, `figures_dir`, `log_figures`, as
            every task takes them (`Task`).
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: Head,
        criterion: Loss | nn.CrossEntropyLoss,
        classes: list[str] | None = None,
        bands: list[str] | None = None,
        classes_weights: dict[str, float] | Literal["balanced"] | None = None,
        encoder_weights_path: str | None = None,
        freeze_encoder: bool = False,
        encoder_lr_factor: float = 1.0,
        mixup: Mixup | None = None,
        init_from: str | None = None,
        distillation: Distillation | None = None,
        attention_every_n_epochs: int = 10,
        max_attention_samples: int = 2048,
        embeddings_every_n_epochs: int = 10,
        max_embeddings: int = 2000,
        **options,
    ):
        super().__init__(encoder, decoder, **options)
        self.save_hyperparameters()
        self.criterion = criterion
        self.classes = list(linked(classes, "Classifier", "classes"))
        self.bands = list(bands) if bands else None
        num_classes = len(self.classes)
        head_classes = (
            decoder.num_classes if isinstance(decoder, ClassificationHead) else num_classes
        )
        if head_classes != num_classes:
            raise ConfigError(
                f"decoder has {head_classes} outputs but {num_classes} classes are given: {classes}"
            )
        check_weighable(criterion, classes_weights)
        self.mixup, self.distillation = mixup, distillation
        if mixup is not None:
            mixup.check_head(decoder)
        if distillation is not None and not init_from:
            raise ConfigError("distillation keeps the init_from model's knowledge: set init_from")
        if isinstance(classes_weights, dict):
            self.criterion.weight = weights_by_name(classes_weights, self.classes)
        self.classes_weights, self.freeze_encoder = classes_weights, freeze_encoder
        self.encoder_weights_path, self.init_from = encoder_weights_path, init_from
        self.encoder_lr_factor = encoder_lr_factor
        self._started = False  # encoder_weights_path / init_from loaded
        if encoder_lr_factor <= 0:
            raise ConfigError(f"encoder_lr_factor must be positive, got {encoder_lr_factor}")
        self.encoder.requires_grad_(not freeze_encoder)
        metrics = _metrics(num_classes)
        for stage in STAGES:  # train_metrics, val_metrics, test_metrics
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}/"))
        self.val_probabilities = MeanProbabilities(num_classes)
        self.register_buffer("output_prior", torch.zeros(num_classes))  # see data_state
        self.reports = ClassificationReports(
            self.classes,
            attention_every_n_epochs,
            embeddings_every_n_epochs,
            max_attention_samples,
            max_embeddings,
            self.log_figures,
        )

    def setup(self, stage: str) -> None:
        self.refuse_unlabelled(
            stage,
            "pretrain an encoder on them with the AutoEncoder (configs/pretrain.yaml) instead",
        )
        stage = getattr(stage, "value", stage)
        if stage == "fit":
            self.start_from_pretrained()
        if stage == "fit" and self.classes_weights == "balanced":
            self.criterion.weight = balanced_weights(self._train_counts()).to(self.device)
        if stage == "fit" and getattr(self.criterion, "logit_adjustment", 0):
            self.criterion.prior = class_prior(self._train_counts()).to(self.device)

    def start_from_pretrained(self) -> None:
        """Load `encoder_weights_path` into the encoder, once, when training starts (the
        `cmap` command does it before anything is written, so a bad file stops the run
        early); a model loaded from a checkpoint holds its weights and needs no such file."""
        path, previous = self.encoder_weights_path, self.init_from
        if path and not self._started:
            load_encoder_weights(self.encoder, path)
        if previous and not self._started:
            known = load_previous(self, previous)
            if self.distillation is not None:
                self.distillation.remember(self, known)
        self._started = True

    def _train_counts(self) -> list[int]:
        data = self.trainer.datamodule
        if not hasattr(data, "class_counts"):
            raise ConfigError(
                'classes_weights "balanced" and logit_adjustment need the class counts of a '
                f"cmap data module's training split (got {type(data).__name__}); give the "
                "weights by class name instead"
            )
        counts = data.class_counts("train")
        return [counts[c] for c in self.classes]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batch (ts [N, T, C], positions [N, T], mask [N, T]) -> logits [N, K]."""
        mask = batch["mask"]
        return self.decoder(self.encoder(batch["ts"], batch["positions"], mask), mask)

    def _step(self, batch: dict[str, torch.Tensor], stage: str, batch_idx: int = 0) -> torch.Tensor:
        target, mixed = batch["class"], None
        if stage == "train" and self.mixup is not None:
            mixed = self.mixup.draw(len(target), target.device)
            batch = self.mixup.inputs(batch, mixed)
        mask, maps = batch["mask"], None
        inputs = (batch["ts"], batch["positions"], mask)
        if stage == "val" and self.reports.wants_attention(self) and self.encoder.attention:
            features, maps = self.encoder.forward_with_attention(*inputs)  # one pass for both
        else:
            features = self.encoder(*inputs)
        if mixed:  # scored against the target that weighs most
            logits = self.mixup.head(self.decoder, features, mask, mixed)
            loss, target = self.mixup.loss(self.criterion, logits, target, mixed)
        else:
            logits = self.decoder(features, mask)
            loss = self.criterion(logits, target)
        if stage == "train" and self.distillation is not None:
            loss = loss + self.distillation(self, inputs, mask, mixed, logits)
        preds = logits.argmax(dim=-1)
        self._metrics(stage).update(preds, target)
        if stage == "val":
            self.val_probabilities.update(logits)
            self.reports.collect(self, batch, features, preds, maps)
        self.log_loss(stage, loss, len(target))
        return loss

    def predict_step(self, batch, batch_idx):
        """Probabilities [N, K] and class [N], with the batch's identifying keys (sample
        index and season, or window and pixel) passed through for the writers."""
        if len(batch["mask"]) == 0:  # a map window without any valid pixel
            probabilities = batch["ts"].new_zeros(0, len(self.classes))
        else:
            probabilities = self(batch).softmax(dim=-1)
        passed = {k: v for k, v in batch.items() if k not in MODEL_INPUTS}
        return passed | {"probabilities": probabilities, "class": probabilities.argmax(dim=-1)}

    def _metrics(self, stage: str) -> MetricCollection:
        return getattr(self, f"{stage}_metrics")

    def on_fit_end(self):
        self.reports.fit_end(self)

    def _epoch_end(self, stage: str):
        metrics = self._metrics(stage)
        scores = metrics.compute()
        confusion = scores.pop(f"{stage}/confusion").cpu().numpy()
        for row in per_class_scores(confusion, self.classes):
            for name in ("f1", "precision", "recall"):
                scores[f"{stage}/{name}/{row['class']}"] = float(row[name])
        self.log_dict(scores, sync_dist=True)  # already synced by torchmetrics: equal everywhere
        metrics.reset()
        if stage == "val":
            self.update_output_prior()
        self.reports.epoch_end(self, stage, confusion)
        if self.prints_scores():
            print_metrics(
                {k: float(scores[f"{stage}/{k}"]) for k in ("accuracy", "f1_macro", "kappa")}
                | {"f1_weighted": float(scores[f"{stage}/f1_weighted"])}
            )

    def configure_optimizers(self):
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [{"params": [p for _, p in trainable]}]
        if self.encoder_lr_factor != 1:  # logged as lr-AdamW/encoder and lr-AdamW/head
            groups = [
                {"name": part, "params": [p for n, p in trainable if is_encoder(n) == encoder]}
                for part, encoder in (("encoder", True), ("head", False))
            ]
            groups[0]["lr_factor"] = self.encoder_lr_factor
        return self._optimizers(groups)


def is_encoder(name: str) -> bool:
    return name.startswith("encoder.")
