"""Tasks (LightningModules): training logic only."""

from cmap.tasks.autoencoder import AutoEncoder
from cmap.tasks.classifier import Classifier
from cmap.tasks.mixup import Mixup
from cmap.tasks.optim import AdamW, WarmupExponentialLR

__all__ = ["AdamW", "AutoEncoder", "Classifier", "Mixup", "WarmupExponentialLR"]
