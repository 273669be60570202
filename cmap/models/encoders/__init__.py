"""Date encoders: (ts [N, T, C], positions [N, T], mask [N, T]) -> features."""

from cmap.models.encoders.exchanger import ExchangerEncoder
from cmap.models.encoders.ltae import LTAEEncoder
from cmap.models.encoders.tempcnn import TempCNNEncoder
from cmap.models.encoders.transformer import TransformerEncoder

__all__ = ["ExchangerEncoder", "LTAEEncoder", "TempCNNEncoder", "TransformerEncoder"]
