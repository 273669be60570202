"""Data: file formats, validation, datasets and the data modules tasks train on."""

from cmap.data.cubes.geotiff import Cube
from cmap.data.cubes.module import CubeDataModule
from cmap.data.module import CmapDataModule
from cmap.data.season import Season
from cmap.data.series.module import SITSDataModule
from cmap.data.series.replay import Replay
from cmap.data.series.table import SeriesTable

__all__ = [
    "CmapDataModule",
    "Cube",
    "CubeDataModule",
    "Replay",
    "SITSDataModule",
    "Season",
    "SeriesTable",
]
