"""Continual season updates: start from last season's classifier (`init_from`) and keep what
it knew (`Distillation`, learning without forgetting)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cmap.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def output_layer(decoder: nn.Module, classes: int) -> str:
    """Name of the head's last linear layer with one output per class."""
    names = [n for n, m in decoder.named_modules() if isinstance(m, nn.Linear)]
    names = [n for n in names if decoder.get_submodule(n).out_features == classes]
    if not names:
        raise ConfigError(f"the head has no linear layer with {classes} outputs (one per class)")
    return names[-1]


def load_previous(model: nn.Module, path: str | Path) -> list[int]:
    """Load a Classifier checkpoint into `model` (a Classifier): every encoder and head tensor,
    the head's output rows matched by class name (classes new to `model` keep their fresh
    rows, classes it dropped are left out). Returns the indices, in `model`'s classes, of the
    classes the checkpoint knew."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "init_from: checkpoint not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    old = list(checkpoint.get("hyper_parameters", {}).get("classes") or [])
    if not old:
        raise DataError(path, "init_from: not a Classifier checkpoint (no classes)")
    state, own = checkpoint["state_dict"], model.state_dict()
    known = [model.classes.index(c) for c in old if c in model.classes]
    rows = [old.index(model.classes[i]) for i in known]
    out = "decoder." + output_layer(model.decoder, len(model.classes)) + "."
    update, problems = {}, []
    for name, value in state.items():
        if not name.startswith(("encoder.", "decoder.")):
            continue
        if name not in own:
            problems.append(f"unexpected {name}")
        elif name.startswith(out):  # [K_old, ...] -> the rows of the classes kept
            update[name] = own[name].clone()
            update[name][known] = value[rows].to(own[name].dtype)
        elif value.shape != own[name].shape:
            problems.append(
                f"{name}: checkpoint {tuple(value.shape)} vs model {tuple(own[name].shape)}"
            )
        else:
            update[name] = value
    if problems:
        raise ConfigError(f"{path}: init_from does not fit this model: {problems[:6]}")
    model.load_state_dict(update, strict=False)
    new = [c for c in model.classes if c not in old]
    log.info("weights from %s (%d classes known, new: %s)", path, len(known), new or "none")
    return known


class Distillation:
    """Learning without forgetting (Li & Hoiem 2017): the model starting the run (`init_from`,
    last season's) stays as a frozen teacher, and the loss adds weight * T² * KL(teacher ||
    model) of their temperature-T softmaxes over the classes the teacher knew, on the new
    season's batches (mixed as the model's are under mixup). No old data is needed.

    Args:
        weight: weight of the distillation term.
        temperature: softmax temperature T (> 1 softens both distributions).
    """

    def __init__(self, weight: float = 1.0, temperature: float = 2.0):
        if weight <= 0 or temperature <= 0:
            raise ConfigError(
                f"Distillation needs weight, temperature > 0: {weight}, {temperature}"
            )
        self.weight, self.temperature = weight, temperature
        self.teacher: tuple[nn.Module, nn.Module] | None = None
        self.known: torch.Tensor | None = None

    def __getstate__(self) -> dict:  # in a checkpoint's hyperparameters: not the teacher
        return self.__dict__ | {"teacher": None}

    def remember(self, model: nn.Module, known: list[int]) -> None:
        """Freeze a copy of `model`'s encoder and head as the teacher."""
        teacher = copy.deepcopy(nn.ModuleList([model.encoder, model.decoder])).eval()
        teacher.requires_grad_(False)
        self.teacher, self.known = (teacher[0], teacher[1]), torch.tensor(known)

    def __call__(self, model, inputs: tuple, mask, mixed, logits: torch.Tensor) -> torch.Tensor:
        """The distillation term for student `logits` [N, K] of batch `inputs`."""
        if self.teacher is None:
            raise ConfigError("Distillation needs init_from: the model to keep (last season's)")
        encoder, decoder = (m.to(logits.device) for m in self.teacher)
        with torch.no_grad():
            features = encoder(*inputs)
            teacher = (
                model.mixup.head(decoder, features, mask, mixed)
                if mixed
                else decoder(features, mask)
            )
        known, t = self.known.to(logits.device), self.temperature
        student = F.log_softmax(logits[:, known] / t, dim=-1)
        target = F.log_softmax(teacher[:, known] / t, dim=-1)
        kl = F.kl_div(student, target, log_target=True, reduction="batchmean")
        return self.weight * t * t * kl
