"""FedProx's proximal term on a client's shared parameters."""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch


class ProximalTerm(pl.Callback):
    """Adds the gradient of (mu / 2) ||w - w_global||² to each shared parameter after every
    backward pass (Li et al. 2020, FedProx), which keeps a client's local epochs near the
    round's global model; parameters that are not shared are left alone.

    Args:
        mu: strength of the term (0: FedAvg).
        anchors: the round's global value of each shared parameter, by parameter name.
    """

    def __init__(self, mu: float, anchors: dict[str, torch.Tensor]):
        self.mu = mu
        self.anchors = {name: value.detach().clone() for name, value in anchors.items()}

    def on_after_backward(self, trainer, pl_module) -> None:
        for name, parameter in pl_module.named_parameters():
            anchor = self.anchors.get(name)
            if anchor is None or parameter.grad is None:
                continue
            parameter.grad.add_(parameter.detach() - anchor.to(parameter.device), alpha=self.mu)

    def penalty(self, module: torch.nn.Module) -> float:
        """(mu / 2) ||w - w_global||² now (logged by the client)."""
        total = sum(
            float((p.detach() - self.anchors[n].to(p.device)).pow(2).sum())
            for n, p in module.named_parameters()
            if n in self.anchors
        )
        return 0.5 * self.mu * total


class RoundSchedule(pl.Callback):
    """Starts the task's per-epoch learning-rate schedule at epoch `offset`, so that a
    client's local epochs follow one schedule over the rounds instead of restarting its
    warm-up every round."""

    def __init__(self, offset: int):
        self.offset = offset

    def on_train_start(self, trainer, pl_module) -> None:
        with warnings.catch_warnings():  # stepping before any optimizer step is the point
            warnings.simplefilter("ignore")
            for config in trainer.lr_scheduler_configs:
                for _ in range(self.offset):
                    config.scheduler.step()
