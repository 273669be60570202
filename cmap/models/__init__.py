"""Model blocks named in YAML: embeddings, encoders, heads (decoders) and losses."""

from cmap.models.base import (
    BandsEmbedding,
    ClassificationHead,
    Encoder,
    Head,
    Loss,
    PoolingHead,
    PositionEmbedding,
    ReconstructionHead,
)
from cmap.models.decoders import (
    AttentionClassification,
    MulticlassClassification,
    ProjectionHead,
    Reconstruction,
)
from cmap.models.embeddings import (
    LearnedPositionalEncoding,
    PatchBandsEncoding,
    PixelEncoding,
    PositionalEncoding,
    ThermalPositionalEncoding,
)
from cmap.models.encoders import ExchangerEncoder, LTAEEncoder, TempCNNEncoder, TransformerEncoder
from cmap.models.losses import BarlowTwins, FocalLoss, MaskedMSE, NTXent

__all__ = [
    "AttentionClassification",
    "BandsEmbedding",
    "BarlowTwins",
    "ClassificationHead",
    "Encoder",
    "Head",
    "Loss",
    "PoolingHead",
    "PositionEmbedding",
    "ReconstructionHead",
    "ExchangerEncoder",
    "FocalLoss",
    "LTAEEncoder",
    "LearnedPositionalEncoding",
    "MaskedMSE",
    "MulticlassClassification",
    "NTXent",
    "PatchBandsEncoding",
    "PixelEncoding",
    "PositionalEncoding",
    "ProjectionHead",
    "Reconstruction",
    "TempCNNEncoder",
    "ThermalPositionalEncoding",
    "TransformerEncoder",
]
