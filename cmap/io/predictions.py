"""Writing point / parcel predictions while `cmap predict` runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from cmap.data.errors import DataError


class PointPredictionWriter(BasePredictionWriter):
    """Writes one parquet row per predicted sample, batch by batch.

    Columns: poi_id, season, label (predicted class name), confidence, and one
    `p_<class>` column per class. `output` defaults to `predictions.parquet` in the run's log
    folder; an existing file is refused unless `overwrite` is set. Rows are written to
    `<output>.partial`, renamed to `output` when prediction ends, so an interrupted run never
    leaves a truncated file under the final name.
    """

    def __init__(self, output: str | None = None, overwrite: bool = False):
        super().__init__(write_interval="batch")
        self.output = output
        self.overwrite = overwrite
        self.path: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        folder = Path(trainer.log_dir or ".")
        self.path = Path(self.output) if self.output else folder / "predictions.parquet"
        if trainer.world_size > 1:
            self.path = self.path.with_stem(f"{self.path.stem}_rank{trainer.global_rank}")
        if self.path.exists() and not self.overwrite:
            raise FileExistsError(
                f"{self.path}: already exists; choose another output or set overwrite"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = self.path.with_name(f".{self.path.name}.writable")
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise DataError(self.path, f"cannot be written ({err.strerror or err})") from err

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        table = trainer.datamodule.datasets[trainer.datamodule.hparams.predict_split].table
        index = prediction["index"].cpu().numpy()
        probabilities = prediction["probabilities"].float().cpu().numpy()
        classes = np.asarray(pl_module.classes, dtype=object)
        columns = {
            "poi_id": pa.array(table.poi_ids[index]),
            "season": pa.array(table.seasons[index]),
            "label": pa.array(classes[probabilities.argmax(1)], pa.string()),
            "confidence": pa.array(probabilities.max(1)),
        }
        columns |= {f"p_{c}": pa.array(probabilities[:, k]) for k, c in enumerate(classes)}
        rows = pa.table(columns)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._partial, rows.schema)
        self._writer.write_table(rows)

    @property
    def _partial(self) -> Path:
        """Rows go here while predicting; the file takes its final name once complete."""
        return self.path.with_name(f"{self.path.name}.partial")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._partial.replace(self.path)
