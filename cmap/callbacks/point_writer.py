"""Writing point / parcel predictions while `cmap predict` runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from cmap.io.atomic import commit, partial_path
from cmap.io.maps import prior_tags
from cmap.io.outputs import ensure_writable, refuse_existing


class PointPredictionWriter(BasePredictionWriter):
    """Writes one parquet row per predicted sample, batch by batch.

    Columns: poi_id, season, label (predicted class name), confidence, and one
    `p_<class>` column per class; the model's output prior is the file's `OUTPUT_PRIOR`
    metadata (for `cmap priors`). `output` defaults to `predictions.parquet` in the run's log
    folder; an existing file is refused unless `overwrite` is set. Rows are written to
    `<output>.partial`, renamed to `output` when prediction ends, so an interrupted run never
    leaves a truncated file under the final name.
    """

    def __init__(self, output: str | None = None, overwrite: bool = False):
        super().__init__(write_interval="batch")
        self.output = output
        self.overwrite = overwrite
        if output:  # refused here, before the run creates its log folder
            refuse_existing(Path(output), overwrite=overwrite)
        self.path: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        folder = Path(trainer.log_dir or ".")
        self.path = Path(self.output) if self.output else folder / "predictions.parquet"
        if trainer.world_size > 1:
            self.path = self.path.with_stem(f"{self.path.stem}_rank{trainer.global_rank}")
        refuse_existing(self.path, overwrite=self.overwrite)
        ensure_writable(self.path)
        self.metadata = prior_tags(getattr(pl_module, "output_prior", None))  # every batch's

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        index = prediction["index"].cpu().numpy()
        probabilities = prediction["probabilities"].float().cpu().numpy()
        classes = np.asarray(pl_module.classes, dtype=object)
        columns = {
            "poi_id": pa.array(trainer.datamodule.sample_ids("predict", index)),
            "season": pa.array(prediction["season"].cpu().numpy().astype(np.int32)),
            "label": pa.array(classes[probabilities.argmax(1)], pa.string()),
            "confidence": pa.array(probabilities.max(1)),
        }
        columns |= {f"p_{c}": pa.array(probabilities[:, k]) for k, c in enumerate(classes)}
        rows = pa.table(columns).replace_schema_metadata(self.metadata)
        if self._writer is None:
            self._writer = pq.ParquetWriter(partial_path(self.path), rows.schema)
        self._writer.write_table(rows)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            commit(partial_path(self.path), self.path)
            print(f"cmap: wrote {self.path}", file=sys.stderr)
