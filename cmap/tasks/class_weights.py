"""Class weights of the Classifier's loss: given by class name, or "balanced" from the
training counts; and the class prior of a logit-adjusted loss."""

from __future__ import annotations

import logging

import torch
from torch import nn

from cmap.errors import ConfigError

log = logging.getLogger(__name__)


def check_weighable(criterion: nn.Module, classes_weights) -> None:
    """Class weights need a criterion with a `weight`, and only one place giving them."""
    if not classes_weights:
        return
    if not hasattr(criterion, "weight"):
        raise ConfigError(
            f"classes_weights given but the criterion {type(criterion).__name__} "
            "takes no class weights"
        )
    if getattr(criterion, "weight", None) is not None:
        raise ConfigError("give class weights either in classes_weights or in the criterion")


def weights_by_name(classes_weights: dict[str, float], classes: list[str]) -> torch.Tensor | None:
    """Weights [K] in class order (1 for classes not named); None when the names are all
    foreign (weights written for another dataset: said in the log)."""
    unknown = sorted(set(classes_weights) - set(classes))
    if len(unknown) == len(classes_weights):
        log.warning(
            "classes_weights name none of the classes %s; training without class weights", classes
        )
        return None
    if unknown:
        raise ConfigError(
            f"classes_weights names unknown class(es) {unknown}; the classes are {classes}"
        )
    negative = {k: v for k, v in classes_weights.items() if not float(v) >= 0}
    if negative:
        raise ConfigError(f"classes_weights must be 0 or more, got {negative}")
    return torch.tensor([float(classes_weights.get(c, 1.0)) for c in classes])


def balanced_weights(counts: list[int]) -> torch.Tensor:
    """Per-class weights sqrt(n / (K n_k)) from class counts (weight 1 for absent classes)."""
    n = torch.tensor(counts, dtype=torch.float64)
    present = n > 0
    weights = torch.ones_like(n)
    weights[present] = (n.sum() / (present.sum() * n[present])).sqrt()
    return weights.float()


def class_prior(counts: list[int]) -> torch.Tensor:
    """Class frequencies [K] from training counts, each count plus one (an absent class keeps
    a small prior, not log 0)."""
    n = torch.tensor(counts, dtype=torch.float64) + 1
    return (n / n.sum()).float()
