"""Map products made from the maps `cmap predict` writes: uncertainty, smoothed maps, parcel
maps, accuracy and area estimates, reference samples. They read the class map or its
probabilities file block by block, so they work on maps larger than memory; `MapProducts`
makes some of them at the end of `cmap predict`."""

from cmap.products.callbacks import MapProducts

__all__ = ["MapProducts"]
