"""What a Classifier computes from its data rather than learns by gradient: the loss's class
weights and prior (from the training counts, when fit starts) and its output prior (the mean
predicted class probabilities over the last validation epoch: the class prior its outputs
carry, against which `cmap priors` re-estimates the prior of a new season). Checkpoints keep
them; weights that lack them (an averaging callback's copy, an older checkpoint) keep the
model's own."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class MeanProbabilities(Metric):
    """Mean softmax [K] of the logits seen, over every process."""

    full_state_update = False

    def __init__(self, num_classes: int):
        super().__init__()
        self.add_state("total", torch.zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(()), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor) -> None:
        """logits [N, K]"""
        self.total += logits.detach().float().softmax(dim=-1).sum(dim=0)
        self.count += len(logits)

    def compute(self) -> torch.Tensor:
        return self.total / self.count.clamp(min=1)


class DataState:
    """Mixin of the Classifier keeping `criterion.weight`, `criterion.prior` and
    `output_prior` with its weights."""

    def _data_buffers(self) -> dict[str, torch.Tensor]:
        named = {f"criterion.{n}": getattr(self.criterion, n, None) for n in ("weight", "prior")}
        named["output_prior"] = self.output_prior
        return {k: v for k, v in named.items() if v is not None}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        missing = {k: v for k, v in self._data_buffers().items() if k not in state_dict}
        if missing:
            state_dict = type(state_dict)({**state_dict, **missing})  # theirs unchanged
        return super().load_state_dict(state_dict, strict, assign)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {**self._data_buffers(), **checkpoint["state_dict"]}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for name in ("weight", "prior"):
            value = checkpoint["state_dict"].get(f"criterion.{name}")
            if value is not None and getattr(self.criterion, name, None) is None:
                setattr(self.criterion, name, value.clone())

    def update_output_prior(self) -> None:
        """At the end of a validation epoch: the epoch's mean probabilities become the
        output prior."""
        self.output_prior.copy_(self.val_probabilities.compute())
        self.val_probabilities.reset()
