"""Crop maps as GeoTIFF, written window by window while `cmap predict` runs, resumable.

Each finished window is written into the map (and the optional probabilities) and saved as
a part under `<map>.parts/`, the record of progress; `<map>.lock` keeps other runs out. A
rerun skips the windows that have a part, if the parts were made with the same settings and
weights (`map_parts`), and rebuilds the map from them if it was left unreadable. The parts
folder goes once every window is written (and the files made Cloud Optimized GeoTIFFs); a
finished map is replaced only with `overwrite`. With several processes (DDP), each saves its
own windows' parts; rank 0 writes the map.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import rasterio
from pytorch_lightning.callbacks import BasePredictionWriter
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from cmap.callbacks.map_parts import (
    differences,
    empty_windows,
    map_settings,
    model_fingerprint,
    part_files,
    read_record,
    write_record,
)
from cmap.errors import CmapError, ConfigError, DataError
from cmap.io import maps
from cmap.io.atomic import atomic_path, remove
from cmap.io.lock import OutputLock
from cmap.io.maps import NODATA, class_tags, colour_table, map_profile, prior_tags
from cmap.io.outputs import refuse_existing
from cmap.io.palette import read_colours
from cmap.reports.quicklook import write_quicklook


class CubeMapWriter(BasePredictionWriter):
    """Writes `cmap predict` over a `CubeDataModule` as a class map GeoTIFF.

    Args:
        output: the class map (uint8, nodata 255 where a pixel has no valid date, colour
            table, class names as `CLASS_<id>` tags and in `CLASS_NAMES`).
        probabilities: also write `<output stem>_probabilities.tif`, one band per class
            (band descriptions = class names).
        probability_dtype: "uint8" (probability x 255, rounded; pixels without a valid date
            are masked by the file's mask band), "float16" or "float32" (NaN there).
        overwrite: start the map afresh, replacing a finished map or an unfinished one's
            parts; without it an existing map is refused and unfinished parts are continued.
        quicklook: also render `<output stem>.png` (colours and legend) when the map is done.
        colours: YAML file of class colours (`class: "#RRGGBB"`) replacing the default
            land-cover palette (`cmap.io.palette`) for the classes it names.
        cloud_optimized: once every window is in, rewrite the files as Cloud Optimized
            GeoTIFFs with overviews (mode for classes, average for probabilities).

    Besides the class tags, both files record the season (`SEASON`, `SEASON_DATES`), cube
    (`SOURCE`), checkpoint (`MODEL`) and its output prior (`OUTPUT_PRIOR`, for `cmap priors`).

    Progress (windows done, pixels/s) shows in cmap's progress bar or log lines.
    """

    def __init__(
        self,
        output: str = "map.tif",
        probabilities: bool = False,
        probability_dtype: Literal["uint8", "float16", "float32"] = "uint8",
        overwrite: bool = False,
        quicklook: bool = True,
        colours: str | None = None,
        cloud_optimized: bool = True,
    ):
        super().__init__(write_interval="batch")
        if not Path(output).name:
            raise ConfigError(f"output must name the map's GeoTIFF file, got {output!r}")
        self.output = Path(output)
        self.probabilities, self.probability_dtype = probabilities, probability_dtype
        self.overwrite, self.quicklook, self.colours = overwrite, quicklook, colours
        self.cloud_optimized = cloud_optimized
        self.parts = self.output.with_name(self.output.name + ".parts")
        self.probability_path = self.output.with_name(f"{self.output.stem}_probabilities.tif")
        if not self.parts.is_dir():  # refused here, before the run creates its log folder
            refuse_existing(self.output, self.probability_path, overwrite=overwrite)
        self._pending: dict[int, list[dict]] = {}
        self.lock = OutputLock(self.output.with_name(self.output.name + ".lock"))

    # -- start: create or resume -------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        data = trainer.datamodule
        self.profile, self.windows = data.map_profile(), data.map_windows()
        self.classes = list(pl_module.classes)
        self.colour_table = colour_table(
            self.classes, read_colours(self.colours, self.classes) if self.colours else None
        )
        self.tags = class_tags(self.classes) | data.map_tags()
        outputs = [self.probabilities, self.probability_dtype if self.probabilities else None]
        sources = (data.source_files() or (None, None))[1]
        self.settings = map_settings(self.windows, self.classes, outputs, sources)
        self.shared = trainer.world_size > 1
        outcome: set[int] | str = set()
        if trainer.is_global_zero:  # one process creates or resumes the outputs
            try:
                self.lock.acquire()
                outcome = self._prepare()
            except CmapError as err:
                if not self.shared:
                    raise
                outcome = str(err)
        if self.shared:
            outcome = trainer.strategy.broadcast(outcome)
            if isinstance(outcome, str):
                raise DataError(None, outcome)
        done = outcome
        data.skip_windows(done)
        if done and trainer.is_global_zero:
            print(
                f"cmap: resuming {self.output}: {len(done)} of {len(self.windows)} windows "
                "already written",
                file=sys.stderr,
            )

    def _prepare(self) -> set[int]:
        """Create the outputs, or find the windows already written; returns those."""
        changed = differences(read_record(self.parts), self.settings) if self.parts.is_dir() else []
        if changed and not self.overwrite:
            raise DataError(
                self.parts,
                f"holds windows of another map (other {', '.join(changed)}); run with the "
                "settings it was started with to finish it, or pass --overwrite true to start over",
            )
        if self.overwrite:  # a new map, whatever an earlier run left
            remove(self.parts)
        if self.parts.is_dir():
            done = set(part_files(self.parts, clean=True))
            if not self._readable():
                self._create()
                self._replay()
            return done
        outputs = (self.output, self.probability_path)
        refuse_existing(*outputs, overwrite=self.overwrite)
        for path in outputs:
            path.unlink(missing_ok=True)
        try:
            self.parts.mkdir(parents=True)
        except OSError as err:
            raise DataError(self.parts, f"cannot be written ({err.strerror or err})") from err
        write_record(self.parts, self.settings)
        self._create()
        return set()

    @property
    def files(self) -> list[Path]:  # the map, and its probabilities when written
        return [self.output] + ([self.probability_path] if self.probabilities else [])

    def _readable(self) -> bool:
        try:
            for path in self.files:
                with rasterio.open(path) as src:
                    src.read(1, window=Window(0, 0, 1, 1))
        except RasterioIOError:
            return False
        return True

    def _create(self) -> None:
        profile = self.profile
        with rasterio.open(self.output, "w", **map_profile(profile, 1, "uint8", NODATA)) as dst:
            dst.write_colormap(1, self.colour_table)
            dst.update_tags(**self.tags)
            dst.set_band_description(1, "class")
        if self.probabilities:
            dtype = self.probability_dtype
            nodata = None if dtype == "uint8" else float("nan")
            spec = map_profile(profile, len(self.classes), dtype, nodata)
            with rasterio.open(self.probability_path, "w", **spec) as dst:
                dst.update_tags(**self.tags)
                for k, name in enumerate(self.classes):
                    dst.set_band_description(k + 1, name)

    # -- during prediction -------------------------------------------------------------------
    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        number = int(batch["window"])
        self._pending.setdefault(number, []).append(
            {
                "pixel": batch["pixel"].cpu().numpy(),
                "class": prediction["class"].cpu().numpy(),
                "probabilities": prediction["probabilities"].float().cpu().numpy()
                if self.probabilities
                else None,
            }
        )
        if bool(batch["window_done"]):
            self._finish_window(number)

    def _finish_window(self, number: int) -> None:
        window = self.windows[number]
        h, w = int(window.height), int(window.width)
        classes = np.full(h * w, NODATA, np.uint8)
        probabilities = None
        if self.probabilities:
            probabilities = np.zeros((len(self.classes), h * w), np.float32)
        for chunk in self._pending.pop(number):
            classes[chunk["pixel"]] = chunk["class"]
            if probabilities is not None:
                probabilities[:, chunk["pixel"]] = chunk["probabilities"].T
        classes = classes.reshape(h, w)
        if probabilities is not None:
            probabilities = probabilities.reshape(-1, h, w)
            probabilities = maps.encode(probabilities, classes == NODATA, self.probability_dtype)
        if not self.shared:  # with several processes, rank 0 writes the map at the end
            self._write_window(number, classes, probabilities)
        arrays = {"classes": classes, "probabilities": probabilities}
        # The window counts as done only once its part is complete.
        with atomic_path(self.parts / f"w{number}.npz") as partial, open(partial, "wb") as f:
            np.savez(f, **{name: a for name, a in arrays.items() if a is not None})

    def _replay(self) -> None:
        """Write every saved part into the map."""
        for number, part in sorted(part_files(self.parts).items()):
            with np.load(part) as arrays:
                self._write_window(number, arrays["classes"], arrays.get("probabilities"))

    def _write_window(self, number: int, classes: np.ndarray, probabilities) -> None:
        window = self.windows[number]
        with rasterio.open(self.output, "r+") as dst:
            dst.write(classes, 1, window=window)
        if probabilities is not None:
            with rasterio.open(self.probability_path, "r+") as dst:
                dst.write(probabilities, window=window)
                if self.probability_dtype == "uint8":  # no value is free for nodata: a mask
                    valid = np.where(classes == NODATA, 0, 255).astype(np.uint8)
                    dst.write_mask(valid, window=window)

    # -- end ----------------------------------------------------------------------------------
    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The weights are known once loaded, after `setup`: parts of other weights are not
        continued, and the checkpoint's name is recorded."""
        outcome = ""
        if trainer.is_global_zero:
            outcome = self._check_model(pl_module)
            model = Path(trainer.ckpt_path).name if trainer.ckpt_path else "not from a checkpoint"
            for path in self.files:
                with rasterio.open(path, "r+") as dst:
                    dst.update_tags(MODEL=model, **prior_tags(pl_module.output_prior))
        if self.shared:
            outcome = trainer.strategy.broadcast(outcome)
        if outcome:
            raise DataError(self.parts, outcome)

    def _check_model(self, pl_module) -> str:
        """ "" (go on), or why the parts must not be continued with these weights."""
        record = read_record(self.parts) or dict(self.settings)
        model = model_fingerprint(pl_module)
        if record.get("model") not in (None, model):
            return (
                "holds windows predicted by other model weights; predict with the checkpoint "
                "it was started with to finish it, or pass --overwrite true to start over"
            )
        write_record(self.parts, record | {"model": model})
        return ""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.lock.release()  # also after an error; a kill leaves a lock the next run takes

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.lock.release()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.shared:
            trainer.strategy.barrier()  # every process has saved its parts
            if not trainer.is_global_zero:
                return
            self._replay()
        done = len(part_files(self.parts))
        if done < len(self.windows):
            print(
                f"cmap: {self.output}: {done} of {len(self.windows)} windows written; "
                "run the same command again to finish",
                file=sys.stderr,
            )
            return
        said = empty_windows(self.parts, self.output, len(self.windows))
        if self.cloud_optimized:  # the parts stay until then: a kill here is finished again
            for path, resampling in zip(self.files, ("mode", "average")):
                maps.cloud_optimize(path, resampling)
        shutil.rmtree(self.parts)
        print(f"cmap: wrote {self.output}", file=sys.stderr)
        if said:
            print(said, file=sys.stderr)
        if self.quicklook:
            print(f"cmap: wrote {write_quicklook(self.output)}", file=sys.stderr)
