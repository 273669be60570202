"""Callbacks: prediction writers (class maps, point tables), the run record, exact resume
(checkpoints that keep the best model across a resume, random state), progress, few-shot
scores."""

from cmap.callbacks.checkpoint import ModelCheckpoint
from cmap.callbacks.fewshot import FewShotEvaluation
from cmap.callbacks.map_writer import CubeMapWriter
from cmap.callbacks.point_writer import PointPredictionWriter
from cmap.callbacks.progress import MapProgressBar
from cmap.callbacks.random_state import RandomStateCheckpoint
from cmap.callbacks.run_info import RunInfo

__all__ = [
    "CubeMapWriter",
    "FewShotEvaluation",
    "MapProgressBar",
    "ModelCheckpoint",
    "PointPredictionWriter",
    "RandomStateCheckpoint",
    "RunInfo",
]
