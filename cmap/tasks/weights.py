"""How an encoder fits its head and its pretrained weights, with errors users can act on."""

from __future__ import annotations

import logging
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from cmap.errors import ConfigError, DataError, preview
from cmap.models.base import Encoder, Head, checked

log = logging.getLogger(__name__)


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load `path` into `encoder`; every key must exist with the same shape, both ways."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "encoder weights file not found")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise DataError(path, f"cannot be read as safetensors ({err})") from err
    expected = encoder.state_dict()
    problems = [
        f"{k}: file {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    problems += [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    if problems:
        raise ConfigError(
            f"{path}: weights do not fit the configured encoder ({len(problems)} problem(s)): "
            f"{preview(problems, 8)}"
        )
    encoder.load_state_dict(weights)
    log.info("encoder weights loaded from %s (%d tensors)", path, len(weights))


def check_blocks(encoder: nn.Module, decoder: nn.Module | None) -> None:
    """The encoder and the head have what their kinds declare, and the head expects as many
    features as the encoder produces (plain modules built in Python are taken as they are)."""
    checked(encoder, "encoder")
    if decoder is None:
        return
    checked(decoder, "decoder")
    if not (isinstance(encoder, Encoder) and isinstance(decoder, Head)):
        return
    produced, expected = encoder.out_dim, decoder.in_dim
    if produced != expected:
        raise ConfigError(
            f"the decoder ({type(decoder).__name__}) expects in_dim={expected} features but the "
            f"encoder ({type(encoder).__name__}) produces {produced}; set the decoder's in_dim "
            f"to {produced}"
        )
