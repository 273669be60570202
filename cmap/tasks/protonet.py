"""Episodic meta-learning with prototypical networks (Snell et al. 2017).

Why ProtoNet rather than MAML or Reptile: its training objective is the nearest-class-mean
rule that few-shot evaluation (`cmap fewshot`) and adaptation to a new region use, so a new
region needs no gradient step at all (K labelled series per class give the prototypes); it has
no inner loop, so a step costs one forward and backward pass (first-order MAML needs several
per task and is sensitive to its inner learning rate on a few dozen series).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable

from cmap.errors import ConfigError
from cmap.models.base import Encoder, Head
from cmap.models.decoders import masked_max
from cmap.tasks.base import Task
from cmap.tasks.optim import AdamW, WarmupExponentialLR
from cmap.tasks.weights import load_encoder_weights


def episode_of(labels: torch.Tensor, k_shot: int, generator=None):
    """One episode from a batch's labels [N]: every class with more than K series in the
    batch is a way; K of its series (drawn at random) are support, the rest queries.
    -> (support index [W K], support way [W K], query index [Q], query way [Q]) or None when
    fewer than 2 classes qualify."""
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    shuffled = labels[order]
    ways = [c for c in shuffled.unique().tolist() if c >= 0 and int((shuffled == c).sum()) > k_shot]
    if len(ways) < 2:
        return None
    support, support_way, query, query_way = [], [], [], []
    for way, c in enumerate(ways):
        members = order[shuffled == c]
        support.append(members[:k_shot])
        query.append(members[k_shot:])
        support_way.append(torch.full((k_shot,), way, device=labels.device))
        query_way.append(torch.full((len(members) - k_shot,), way, device=labels.device))
    return tuple(torch.cat(parts) for parts in (support, support_way, query, query_way))


def prototype_logits(support: torch.Tensor, ways: torch.Tensor, query: torch.Tensor, n: int):
    """Support features [S, D] of ways [S] (0..n-1), query features [Q, D] -> logits [Q, n]:
    minus the squared Euclidean distance to each way's mean."""
    prototypes = torch.zeros(n, support.shape[1], dtype=support.dtype, device=support.device)
    prototypes = prototypes.index_add(0, ways, support) / torch.bincount(ways, minlength=n)[:, None]
    return -torch.cdist(query, prototypes).pow(2)


class ProtoNet(Task):
    """Trains an encoder so that series lie near the mean of their class's few labelled ones.

    Each training batch is turned into an episode (`episode_of`): its classes with more than
    `k_shot` series are the ways; the loss is the cross-entropy of the queries' logits, minus
    squared distances to the ways' prototypes. Validation makes episodes the same way, drawn
    from the batch index (the same every epoch). Batches should hold several series of most
    classes: use the data module's `class_balance: 1.0` and a batch size of 100 or more
    (configs/protonet.yaml). `cmap extract` and `cmap fewshot` work on its checkpoints.

    Args:
        encoder: (ts [N, T, C], positions [N, T], mask [N, T]) -> [N, T, D] or [N, D].
        decoder: optional head on the features, e.g. a `ProjectionHead` (default: the
            features max-pooled over valid dates).
        k_shot: support series per way in training episodes.
        encoder_weights_path: safetensors file to start the encoder from (`cmap extract`).
        classes, bands: linked from the data.
        optimizer, lr_scheduler: as in the Classifier.
        compile: as every task takes it (`Task`).
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: Head | None = None,
        k_shot: int = 5,
        encoder_weights_path: str | None = None,
        classes: list[str] | None = None,
        bands: list[str] | None = None,
        optimizer: OptimizerCallable = AdamW,
        lr_scheduler: LRSchedulerCallable = WarmupExponentialLR,
        compile: bool = False,
    ):
        super().__init__(encoder, decoder, optimizer, lr_scheduler, compile=compile)
        self.save_hyperparameters()
        if k_shot < 1:
            raise ConfigError(f"ProtoNet needs k_shot >= 1, got {k_shot}")
        self.k_shot, self.encoder_weights_path = k_shot, encoder_weights_path
        self.classes, self.bands = list(classes or []), list(bands) if bands else None
        self._started = False
        self._episodes = 0  # training episodes this epoch

    def setup(self, stage: str) -> None:
        self.refuse_unlabelled(
            stage, "ProtoNet learns from labelled episodes: pretrain with configs/contrastive.yaml"
        )
        stage = getattr(stage, "value", stage)
        if stage == "fit" and self.encoder_weights_path and not self._started:
            load_encoder_weights(self.encoder, self.encoder_weights_path)
        self._started = True

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batch (ts [N, T, C], positions [N, T], mask [N, T]) -> features [N, D]."""
        mask = batch["mask"]
        features = self.encoder(batch["ts"], batch["positions"], mask)
        if self.decoder is not None:
            return self.decoder(features, mask)
        return features if features.dim() == 2 else masked_max(features, mask)

    def _step(self, batch: dict, stage: str, batch_idx: int = 0):
        generator = None if stage == "train" else torch.Generator().manual_seed(batch_idx)
        episode = episode_of(batch["class"].cpu(), self.k_shot, generator)
        if episode is None:  # fewer than two classes with enough series: nothing to learn
            return None
        self._episodes += stage == "train"
        support, support_way, query, query_way = (p.to(self.device) for p in episode)
        features = self(batch)
        n = int(support_way.max()) + 1
        logits = prototype_logits(features[support], support_way, features[query], n)
        loss = F.cross_entropy(logits, query_way)
        accuracy = (logits.argmax(dim=1) == query_way).float().mean()
        size = len(query)
        self.log_loss(stage, loss, size)
        self.log(
            f"{stage}/episode_accuracy", accuracy, on_epoch=True, batch_size=size, sync_dist=True
        )
        self.log(f"{stage}/ways", float(n), on_epoch=True, batch_size=1, sync_dist=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self._episodes = 0

    def _epoch_end(self, stage: str) -> None:
        """Scores are logged per step and averaged by Lightning; an epoch without one training
        episode would learn nothing, silently: an error says why."""
        if stage == "train" and not self._episodes:
            k = self.k_shot
            raise ConfigError(
                f"ProtoNet: no training batch of epoch {self.current_epoch} held two classes "
                f"with more than k_shot ({k}) series each, so there is nothing to learn; give "
                "it more labelled series per class, a smaller k_shot or larger batches"
            )

    def configure_optimizers(self):
        return self._optimizers([{"params": [p for p in self.parameters() if p.requires_grad]}])
