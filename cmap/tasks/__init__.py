"""Tasks (LightningModules): training logic only."""

from cmap.tasks.autoencoder import AutoEncoder
from cmap.tasks.classifier import Classifier
from cmap.tasks.continual import Distillation
from cmap.tasks.contrastive import Contrastive
from cmap.tasks.mixup import Mixup
from cmap.tasks.optim import AdamW, WarmupExponentialLR
from cmap.tasks.protonet import ProtoNet
from cmap.tasks.views import BandScale, DateJitter, DateSubset, GaussianNoise, TimeCrop

__all__ = [
    "AdamW",
    "AutoEncoder",
    "BandScale",
    "Classifier",
    "Contrastive",
    "DateJitter",
    "DateSubset",
    "Distillation",
    "GaussianNoise",
    "Mixup",
    "ProtoNet",
    "TimeCrop",
    "WarmupExponentialLR",
]
