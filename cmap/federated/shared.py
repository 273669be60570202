"""Which of a model's tensors a federation averages, as the list of NumPy arrays Flower sends."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cmap.errors import ConfigError


class SharedParameters:
    """The entries of a model's state dict under `prefixes` (e.g. `encoder`, `decoder`),
    in the state dict's order. What is not shared stays with each client, e.g. its own head
    when clients have different classes.

    Args:
        model: the client's model (a cmap task).
        prefixes: module names whose tensors are shared (`encoder` shares `encoder.*`).
        client: the client's name, for error messages.
        local_batch_norm: keep batch-norm layers (scale, shift and statistics) with each
            client, as FedBN (Li et al. 2021) does for clients whose inputs differ (soils,
            sensors, calendars); False shares them like any other tensor.
    """

    def __init__(
        self,
        model: nn.Module,
        prefixes: list[str],
        client: str = "client",
        local_batch_norm: bool = False,
    ):
        state = model.state_dict()
        norms = [
            n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        local = tuple(f"{n}." for n in norms) if local_batch_norm else ()
        self.names = [
            k
            for k in state
            if any(k.split(".")[0] == p for p in prefixes) and not k.startswith(local)
        ]
        missing = [p for p in prefixes if not any(k.split(".")[0] == p for k in state)]
        if missing or not self.names:
            modules = sorted({k.split(".")[0] for k in state})
            raise ConfigError(
                f"{client}: share names {missing or prefixes}, which the model does not have "
                f"(its modules: {modules})"
            )
        self.model, self.client = model, client

    def get(self) -> list[np.ndarray]:
        """The shared tensors as float32/float64 or integer arrays, on the CPU."""
        state = self.model.state_dict()
        return [state[k].detach().cpu().numpy().copy() for k in self.names]

    def set(self, arrays: list[np.ndarray]) -> None:
        """Load `arrays` (in `names` order) into the model; an average of integer buffers is
        rounded back to their type."""
        if len(arrays) != len(self.names):
            raise ConfigError(
                f"{self.client}: the federation sends {len(arrays)} shared tensors, this model "
                f"shares {len(self.names)}: do all clients use the same model and `share`?"
            )
        state = self.model.state_dict()
        update = {}
        for name, array in zip(self.names, arrays):
            own = state[name]
            if tuple(array.shape) != tuple(own.shape):
                raise ConfigError(
                    f"{self.client}: shared tensor {name!r} has shape {tuple(array.shape)} in "
                    f"the federation and {tuple(own.shape)} here; clients sharing the head "
                    "need the same classes (data.init_args.classes), or share only the encoder"
                )
            value = torch.from_numpy(np.asarray(array))
            if not own.is_floating_point():
                value = value.round()
            update[name] = value.to(dtype=own.dtype, device=own.device)
        self.model.load_state_dict(update, strict=False)

    def buffers(self) -> str:
        """Positions of the shared tensors that are buffers, not trained (batch-norm
        statistics and counters), space-separated: the `buffers` metric of a client's fit."""
        trained = {n for n, _ in self.model.named_parameters()}
        return " ".join(str(i) for i, n in enumerate(self.names) if n not in trained)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The shared parameters (trainable ones only) by name, as the model holds them."""
        wanted = set(self.names)
        return {n: p for n, p in self.model.named_parameters() if n in wanted}
