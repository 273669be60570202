"""Model blocks named in YAML: embeddings, encoders, heads (decoders) and losses."""

from cmap.models.base import BandsEmbedding, Encoder, Head, Loss, PositionEmbedding
from cmap.models.decoders import AttentionClassification, MulticlassClassification, Reconstruction
from cmap.models.embeddings import (
    LearnedPositionalEncoding,
    PatchBandsEncoding,
    PixelEncoding,
    PositionalEncoding,
    ThermalPositionalEncoding,
)
from cmap.models.encoders import ExchangerEncoder, LTAEEncoder, TempCNNEncoder, TransformerEncoder
from cmap.models.losses import FocalLoss, MaskedMSE

__all__ = [
    "AttentionClassification",
    "BandsEmbedding",
    "Encoder",
    "Head",
    "Loss",
    "PositionEmbedding",
    "ExchangerEncoder",
    "FocalLoss",
    "LTAEEncoder",
    "LearnedPositionalEncoding",
    "MaskedMSE",
    "MulticlassClassification",
    "PatchBandsEncoding",
    "PixelEncoding",
    "PositionalEncoding",
    "Reconstruction",
    "TempCNNEncoder",
    "ThermalPositionalEncoding",
    "TransformerEncoder",
]
