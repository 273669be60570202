"""Embeddings of a date: its band values (bands) and its place in the season (positions)."""

from cmap.models.embeddings.bands import PatchBandsEncoding, PixelEncoding
from cmap.models.embeddings.positions import (
    LearnedPositionalEncoding,
    PositionalEncoding,
    ThermalPositionalEncoding,
)

__all__ = [
    "LearnedPositionalEncoding",
    "PatchBandsEncoding",
    "PixelEncoding",
    "PositionalEncoding",
    "ThermalPositionalEncoding",
]
