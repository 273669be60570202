"""What tests share: paths, tiny data and model builders, the `cmap` runner, and callbacks the
tests inject into `cmap` runs (named `tests.helpers.<Name>` in YAML)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytorch_lightning as pl
import rasterio
import torch
from rasterio.transform import from_origin
from torch import nn

from cmap.models import (
    ExchangerEncoder,
    LearnedPositionalEncoding,
    LTAEEncoder,
    PatchBandsEncoding,
    PixelEncoding,
    PositionalEncoding,
    TempCNNEncoder,
    TransformerEncoder,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CONFIGS = REPO / "configs"
DEMO = CONFIGS / "demo.yaml"
PREDICT = CONFIGS / "predict_demo.yaml"
DEMO_CUBE = REPO / "data" / "demo" / "cube"
TRANSFORM = from_origin(500_000.0, 4_800_000.0, 10.0, 10.0)
D = 16  # width of the small test models
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"the shared real datasets ({SHARED}) are not beside this clone"
)


def run_cmap(*args, cwd: Path, env: dict | None = None, timeout: int = 300):
    """`python -m cmap ARGS` in a subprocess, as a user runs it (tests.helpers importable, for
    the callbacks below); returns the completed process, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cmap", *map(str, args)],
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(REPO)} | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def garble_block(path: Path) -> None:
    """Overwrite a GeoTIFF's first compressed block: the file opens, its pixels do not read."""
    with rasterio.open(path) as src:
        at = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    data[at : at + size] = b"\xff" * size
    path.write_bytes(bytes(data))


def write_split(folder: Path, features: dict, labels: dict | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(features), folder / "features.pq")
    if labels is not None:
        pq.write_table(pa.table(labels), folder / "labels.pq")


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def write_tif(path, data, crs="EPSG:32631", transform=TRANSFORM, names=None, nodata=0):
    count, height, width = data.shape
    profile = dict(
        driver="GTiff", width=width, height=height, count=count, dtype=data.dtype.name,
        crs=crs, transform=transform, nodata=nodata,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if names:
            dst.descriptions = tuple(names)


def small_cube(folder, dates=("2021-03-01", "2021-03-11", "2021-03-21"), bands=("B04", "B08")):
    folder.mkdir(parents=True, exist_ok=True)
    for t, date in enumerate(dates):
        data = np.arange(len(bands) * 4 * 5, dtype=np.int16).reshape(len(bands), 4, 5) + 100 * t
        data[:, 0, 0] = 0  # nodata at pixel 0 on every date
        if t == 1:
            data[0, 1, 1] = 0  # one band missing: the date is invalid at pixel 6
        write_tif(folder / f"S2_{date}.tif", data, names=list(bands))
    return folder


def batch(n=4, t=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ts = torch.rand(n, t, c, generator=g)
    lengths = torch.tensor([t, t - 2, 1, 3][:n])
    mask = torch.arange(t)[None] < lengths[:, None]
    positions = torch.randint(0, 300, (n, t), generator=g).sort(dim=1).values * mask
    return ts, positions, mask


def encoder(d=D, norm_first=False):
    return TransformerEncoder(
        PositionalEncoding(d, max_len=400),
        PixelEncoding(3, [8, d]),
        d_model=d,
        n_heads=4,
        n_layers=2,
        dropout_p=0.0,
        norm_first=norm_first,
    )


def build_encoder(name: str) -> nn.Module:
    """One small encoder of each family (dropout off so outputs are comparable)."""
    positions = PositionalEncoding(D, max_len=400)
    bands = PixelEncoding(3, [8, D])
    if name == "transformer":
        return encoder()
    if name == "transformer_pre_norm":
        return encoder(norm_first=True)
    if name == "transformer_learned_patch":
        return TransformerEncoder(
            LearnedPositionalEncoding(D, max_len=400),
            PatchBandsEncoding(3, [4, 8], [2, 1], out_dim=D),
            d_model=D,
            n_heads=2,
            n_layers=1,
            dropout_p=0.0,
        )
    if name == "exchanger":
        return ExchangerEncoder(positions, bands, d_model=D, n_tokens=3, n_heads=4, dropout_p=0.0)
    if name == "ltae":
        return LTAEEncoder(
            positions, bands, d_model=D, n_heads=4, d_k=4, widths=[12], dropout_p=0.0
        )
    if name == "tempcnn":
        return TempCNNEncoder(
            3, n_bins=8, span=400, widths=[8, 8], kernel=3, out_dim=D, dropout_p=0.0
        )
    raise KeyError(name)


# -- callbacks injected into runs -------------------------------------------------------------


class KillAtStep(pl.Callback):
    """SIGKILL the process when training reaches global step `step` (a pre-empted job)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PreemptAtStep(pl.Callback):
    """At global step `step`, what SLURM does to a job near its time limit: SIGUSR1 (the
    requeue warning), then SIGKILL."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs before the next line
            os.kill(os.getpid(), signal.SIGKILL)


class KillAtPredictBatch(pl.Callback):
    """SIGKILL the process when prediction reaches batch `batch` (a pre-empted job)."""

    def __init__(self, batch: int):
        self.batch = batch

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class RecordTrainIndices(pl.Callback):
    """Write the sample indices each process trains on: `train_indices_rank<R>.txt` (cwd)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(f"train_indices_rank{trainer.global_rank}.txt", "a") as out:
            out.write(f"{trainer.current_epoch} " + " ".join(map(str, batch["index"].tolist())))
            out.write("\n")


class StopAtPredictBatch(pl.Callback):
    """Raise `Stopped` when prediction reaches batch `batch` (an interruption, in-process)."""

    def __init__(self, batch: int):
        self.batch = batch

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == self.batch:
            raise Stopped(f"stopped at batch {batch_idx}")


class Stopped(RuntimeError):
    """Raised by `StopAtPredictBatch`."""


def write_netcdf(path, bands: dict, dates, transform, crs="EPSG:32631", flip=False, attrs=None):
    """A NetCDF stack as openEO / odc-stac write them: bands [T, H, W] over timestamp, y, x
    (pixel centres), a `spatial_ref` grid mapping with crs_wkt, fill value and scale in the
    attributes. `flip` stores rows south to north; `crs=None` writes no CRS at all."""
    import xarray as xr

    t, h, w = next(iter(bands.values())).shape
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    order = slice(None, None, -1) if flip else slice(None)
    variables = {}
    for name, data in bands.items():
        extra = {"grid_mapping": "spatial_ref"} if crs else {}
        variables[name] = xr.Variable(
            ("timestamp", "y", "x"), data[:, order], {**(attrs or {}).get(name, {}), **extra}
        )
    coords = {"timestamp": np.array(dates, "datetime64[ns]"), "y": ys[order], "x": xs}
    ds = xr.Dataset(variables, coords)
    if crs:
        ds.coords["spatial_ref"] = xr.Variable(
            (), 0, {"crs_wkt": rasterio.crs.CRS.from_user_input(crs).to_wkt()}
        )
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def cube_as_netcdf(folder: Path, path: Path, scale: float = 1e-4) -> Path:
    """A GeoTIFF cube (one file per date, bands named) as one NetCDF file."""
    from cmap.data.cubes.geotiff import Cube

    cube = Cube(folder)
    values = np.stack([rasterio.open(p).read() for p in sorted(folder.glob("*.tif"))])
    bands = {name: values[:, c] for c, name in enumerate(cube.bands)}
    attrs = {name: {"_FillValue": 0, "scale_factor": scale} for name in cube.bands}
    return write_netcdf(path, bands, cube.dates, cube.transform, cube.crs, attrs=attrs)


def stac_catalogue(folder: Path, out: Path, bands: list[str], assets: dict | None = None) -> Path:
    """A local static STAC catalogue of a GeoTIFF cube: one item per date, one single-band
    GeoTIFF asset per band (asset keys from `assets`, else the band names), with the
    projection extension. Returns the catalog.json."""
    import datetime as dt

    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from rasterio.warp import transform_bounds
    from shapely.geometry import box, mapping

    from cmap.data.cubes.geotiff import Cube

    cube = Cube(folder)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = pystac.Catalog(id="cube", description=f"{folder} as STAC items")
    left, top = cube.transform * (0, 0)
    right, bottom = cube.transform * (cube.width, cube.height)
    lonlat = transform_bounds(cube.crs, "EPSG:4326", left, bottom, right, top)
    for path, date in zip(sorted(folder.glob("*.tif")), cube.dates):
        with rasterio.open(path) as src:
            data, profile, names = src.read(), src.profile, list(src.descriptions)
        when = dt.datetime.fromisoformat(f"{date}T10:30:00")
        item = pystac.Item(str(date), mapping(box(*lonlat)), list(lonlat), when, {})
        for band in bands:
            asset = (assets or {}).get(band, band)
            tif = out / f"{date}_{asset}.tif"
            with rasterio.open(tif, "w", **(profile | {"count": 1})) as dst:
                dst.write(data[names.index(band)][None])
            item.add_asset(
                asset, pystac.Asset(str(tif.resolve()), media_type=pystac.MediaType.GEOTIFF)
            )
        projection = ProjectionExtension.ext(item, add_if_missing=True)
        projection.epsg = cube.crs.to_epsg()
        projection.transform = list(cube.transform)[:6]
        projection.shape = [cube.height, cube.width]
        catalogue.add_item(item)
    catalogue.normalize_and_save(str(out / "catalogue"), pystac.CatalogType.SELF_CONTAINED)
    return out / "catalogue" / "catalog.json"


def write_probabilities(path, data: np.ndarray, missing=None, classes=None, dtype="uint8"):
    """A probabilities file as the map writer makes it: [K, H, W] as uint8 x 255 with the
    mask band marking `missing` [H, W] (or floats with NaN there), class names as band
    descriptions."""
    k, h, w = data.shape
    missing = np.zeros((h, w), bool) if missing is None else missing
    nodata = None if dtype == "uint8" else float("nan")
    profile = dict(driver="GTiff", width=w, height=h, count=k, dtype=dtype, crs="EPSG:32631",
                   transform=TRANSFORM, nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        if dtype == "uint8":
            dst.write(np.round(data * 255).astype(np.uint8))
            dst.write_mask(np.where(missing, 0, 255).astype(np.uint8))
        else:
            dst.write(np.where(missing, np.nan, data).astype(dtype))
        dst.descriptions = tuple(classes or [f"c{i}" for i in range(k)])
        dst.update_tags(SEASON="2021", CLASS_NAMES=",".join(dst.descriptions))
    return path
