"""Map products made by `cmap predict` itself, once its map is written: list `MapProducts`
after the `CubeMapWriter` among the trainer's callbacks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl

from cmap.callbacks.map_writer import CubeMapWriter
from cmap.errors import ConfigError
from cmap.io.outputs import derived
from cmap.products.parcels import parcel_map
from cmap.products.smoothing import smooth_probabilities
from cmap.products.uncertainty import write_uncertainty


class MapProducts(pl.Callback):
    """Products of the finished map of the `CubeMapWriter` listed before it (which must
    write `probabilities`), with the commands' defaults and names beside the map.

    Args:
        uncertainty: write `<map>_uncertainty.tif` (`cmap uncertainty`).
        smooth: also write `<map>_smoothed.tif` and its probabilities with this method
            (`cmap smooth`, default settings).
        parcels: a vector file of parcels: write `<map>_parcels.gpkg` (`cmap parcels`).
        id_column, parcel_method, buffer, min_pixels: as `cmap parcels`' options.
        overwrite: replace products made earlier.
    """

    def __init__(
        self,
        uncertainty: bool = True,
        smooth: Literal["bayes", "gaussian", "majority"] | None = None,
        parcels: str | None = None,
        id_column: str | None = None,
        parcel_method: Literal["mean", "majority"] = "mean",
        buffer: float = 0.0,
        min_pixels: int = 1,
        overwrite: bool = False,
    ):
        self.uncertainty, self.smooth, self.parcels = uncertainty, smooth, parcels
        self.parcel_options = (id_column, parcel_method, buffer, min_pixels)
        self.overwrite = overwrite

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        writers = [c for c in trainer.callbacks if isinstance(c, CubeMapWriter)]
        position = trainer.callbacks.index(self)
        if not writers or trainer.callbacks.index(writers[0]) > position:
            raise ConfigError("MapProducts needs a CubeMapWriter listed before it")
        if not writers[0].probabilities:
            raise ConfigError("MapProducts needs the CubeMapWriter's probabilities: true")
        self.writer = writers[0]

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        writer = self.writer
        if not trainer.is_global_zero or writer.parts.exists() or not writer.output.exists():
            return  # an unfinished map: the products come with the run that finishes it
        source = writer.probability_path
        written: list[Path] = []
        if self.uncertainty:
            written.append(write_uncertainty(source, None, self.overwrite))
        if self.smooth:
            out = derived(writer.output, "smoothed")
            written += smooth_probabilities(source, out, self.smooth, overwrite=self.overwrite)
        if self.parcels:
            out = derived(writer.output, "parcels", ".gpkg")
            counts = parcel_map(
                source, Path(self.parcels), out, *self.parcel_options, overwrite=self.overwrite
            )
            print(
                "cmap: parcels: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
                file=sys.stderr,
            )
            written.append(out)
        for path in written:
            print(f"cmap: wrote {path}", file=sys.stderr)
