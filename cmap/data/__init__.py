"""Data: file formats, validation, datasets and the data modules tasks train on."""

from cmap.data.formats.cube import Cube
from cmap.data.modules.base import CmapDataModule
from cmap.data.modules.cube import CubeDataModule
from cmap.data.modules.samples import SITSDataModule
from cmap.data.replay import Replay
from cmap.data.season import Season
from cmap.data.table import SeriesTable

__all__ = [
    "CmapDataModule",
    "Cube",
    "CubeDataModule",
    "Replay",
    "SITSDataModule",
    "Season",
    "SeriesTable",
]
