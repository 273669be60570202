"""Tasks (LightningModules): training logic only."""

from cmap.tasks.autoencoder import AutoEncoder
from cmap.tasks.classifier import Classifier

__all__ = ["AutoEncoder", "Classifier"]
