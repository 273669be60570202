"""Callbacks: prediction writers (class maps, point tables), the run record, exact resume,
and the map-aware progress bar."""

from cmap.callbacks.map_writer import CubeMapWriter
from cmap.callbacks.point_writer import PointPredictionWriter
from cmap.callbacks.progress import MapProgressBar
from cmap.callbacks.random_state import RandomStateCheckpoint
from cmap.callbacks.run_info import RunInfo

__all__ = [
    "CubeMapWriter",
    "MapProgressBar",
    "PointPredictionWriter",
    "RandomStateCheckpoint",
    "RunInfo",
]
