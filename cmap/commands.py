"""The commands besides Lightning's fit/validate/test/predict, as typed functions: `cmap
<command> --help` lists their arguments (jsonargparse reads them from these signatures)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from safetensors.torch import save_file

from cmap.data.cubes.module import CubeDataModule
from cmap.data.demo import Region, generate
from cmap.data.labels.samples import cube_options, report_unmapped, write_samples
from cmap.data.labels.sources import LabelSource
from cmap.data.mapping import read_mapping
from cmap.data.weather import Weather
from cmap.errors import ConfigError, DataError
from cmap.federated import federate
from cmap.fewshot.command import fewshot
from cmap.io.atomic import atomic_path
from cmap.io.checkpoints import encoder_from_checkpoint, find_checkpoint
from cmap.io.outputs import check_folder_output, refuse_existing
from cmap.products.commands import PRODUCTS
from cmap.reports.quicklook import write_quicklook
from cmap.sweep import sweep


def extract(checkpoint: Path, output: Path | None = None, overwrite: bool = False) -> None:
    """Write a checkpoint's encoder (weights and YAML) for fine-tuning.

    The files are encoder.safetensors and encoder.yaml, for
    `Classifier(encoder_weights_path=...)` and `--model.init_args.encoder encoder.yaml`.

    Args:
        checkpoint: a .ckpt file of either task, or a folder: its newest best.ckpt (else
            last.ckpt) is used.
        output: folder for the two files (default: the checkpoint's).
        overwrite: replace existing files.
    """
    checkpoint = find_checkpoint(Path(checkpoint))
    tensors, spec = encoder_from_checkpoint(checkpoint)
    folder = Path(output) if output else checkpoint.parent
    weights, config = folder / "encoder.safetensors", folder / "encoder.yaml"
    refuse_existing(weights, config, overwrite=overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(weights) as partial:
            save_file(tensors, str(partial), metadata={"source": str(checkpoint)})
        with atomic_path(config) as partial:
            header = f"# encoder of {checkpoint}\n"
            partial.write_text(header + yaml.safe_dump(spec, sort_keys=False))
    except OSError as err:
        raise DataError(folder, f"cannot be written ({err.strerror or err})") from err
    count = sum(t.numel() for t in tensors.values())
    print(f"{checkpoint}: {len(tensors)} encoder tensors ({count:,} values), {spec['class_path']}")
    for path in (weights, config):
        print(f"wrote {path}")


def samples(
    cube: Path,
    out: Path,
    points: Path | None = None,
    label_raster: Path | None = None,
    label_band: str | None = None,
    vector: Path | None = None,
    label_column: str = "label",
    id_column: str | None = None,
    buffer: float = 0.0,
    min_pixels: int = 1,
    label_mapping: Path | None = None,
    unlabelled: int | None = None,
    data: Path | None = None,
    weather: Path | None = None,
    weather_variable: str = "temperature_mean",
    split: list[float] = [0.6, 0.2, 0.2],  # noqa: B006 (jsonargparse needs a literal)
    seed: int = 0,
    group: Literal["parcel", "block"] = "parcel",
    series: Literal["pixel", "parcel_mean", "parcel_median"] = "pixel",
    block: int = 16,
    year: int | None = None,
    overwrite: bool = False,
    tiles: bool = False,
    cluster: str = "local",
    workers: int | None = None,
    retries: int = 2,
    grid: str | None = None,
) -> None:
    """Cut a samples folder (training points) out of a cube, or of many tiles.

    The samples folder is the layout of docs/reference/data_formats.md §1.

    Labelled pixels come from a points table, a label raster or a vector file of parcels;
    `unlabelled` draws random pixels instead, for pretraining. Samples are split into
    train/val/test by `seed`, stratified by label, whole groups at a time (a `field_id` of
    the points, a parcel of the vector file or the label raster, or a block of pixels), so
    pixels of one field never fall in two splits.

    Args:
        cube: the cube: a GeoTIFF folder, NetCDF / Zarr (a file, a folder, a glob) or a STAC
            catalogue (catalog.json, a collection or an ItemCollection).
        out: the samples folder to write.
        points: CSV or parquet table with `x`, `y` (cube CRS) or `lon`, `lat` (WGS 84),
            `label`, optional `poi_id` and `field_id`.
        label_raster: a label raster aligned with the cube: a GeoTIFF, or a NetCDF / Zarr
            file whose 2-D variable `label_band` holds the labels (0 or its fill value:
            unlabelled).
        label_band: the label variable of a NetCDF / Zarr label raster (e.g. CT).
        vector: parcels (polygons) or points with a label column: GeoPackage, Shapefile,
            GeoParquet, FlatGeobuf (needs `pip install 'cmap[geo]'`); reprojected onto the
            cube; a pixel belongs to the polygon holding its centre.
        label_column: the vector file's label column.
        id_column: the vector file's parcel identifier (default: its row number).
        buffer: shrink polygons by this distance (cube CRS units, metres) first, to drop
            the mixed pixels of field borders.
        min_pixels: skip parcels left with fewer pixels (counted and reported).
        label_mapping: YAML `class: [codes]` turning the raw labels into classes; copied
            into the samples folder and named by its meta.yaml (codes it does not list
            become `other` when training, and are counted here).
        unlabelled: this many random pixels, without labels.
        data: a YAML file of how to read the cube: the `data` section of a fit / predict
            config, or a mapping of CubeDataModule arguments (bands, quality_band,
            time_range, ...); `cube` comes from the command line.
        weather: daily temperature (NetCDF / Zarr grid such as AgERA5, or a parquet table
            of one station): each split gets its pixels' `temperatures.pq` (degC, every day
            from the season start), so training can use `positions: gdd`.
        weather_variable: the temperature variable or column of `weather`.
        split: shares of train, val and test.
        seed: seeds the split and the random pixels.
        group: what a label raster's splits keep whole: a `parcel` (a patch of one label,
            4-connected) or a `block` of pixels.
        block: side (pixels) of the label raster's blocks.
        series: one sample per `pixel`, or per parcel (group): the mean or median of its
            valid pixels at each date (`parcel_mean`, `parcel_median`).
        year: the season of the cube's dates; default: the one holding every date.
        overwrite: replace a samples folder written earlier by cmap samples (never a
            folder cmap did not write, nor one holding the inputs).
        tiles: `cube` lists tiles, each a cube (a glob pattern, a path or @FILE, as
            `cmap predict --tiles`), cut on a Dask cluster into one samples folder: points
            and parcels off a tile are left out, each field or parcel is cut from the tile
            holding most of it, the splits are drawn over all tiles at once; a label raster
            is one per tile (`labels/{tile}.tif`); `unlabelled` is shared out evenly.
        cluster: with tiles: `local` (a LocalCluster started for the run), `tcp://HOST:PORT`
            or a scheduler file (.json).
        workers: with tiles and `local`: its processes (default: the cores).
        retries: with tiles: attempts after a tile's task failed or its worker was lost.
        grid: with tiles: `cube` is one STAC catalogue, cut into the cells of a grid (a cell
            size in the data's crs units, or `mgrs`), as `cmap predict --tiles --grid`.
    """
    source = LabelSource(
        points=points,
        label_raster=label_raster,
        label_band=label_band,
        vector=vector,
        label_column=label_column,
        id_column=id_column,
        buffer=buffer,
        min_pixels=min_pixels,
        unlabelled=unlabelled,
        group=group,
        block=block,
    )
    if len(split) != 3 or min(split) < 0 or sum(split) <= 0:
        raise ConfigError(
            f"split takes three shares (train, val, test), none negative and not all 0, got {split}"
        )
    out = Path(out)
    named = (label_mapping, data, weather)
    inputs = [Path(cube), *source.files] + [Path(p) for p in named if p is not None]
    check_folder_output(out, overwrite, inputs)
    mapping = read_mapping(label_mapping) if label_mapping is not None else None
    options = cube_options(Path(data)) if data is not None else {}
    if grid and not tiles:
        raise ConfigError("--grid cuts one STAC catalogue into tiles: add --tiles true")
    if tiles:
        from cmap.tiles.samples import Cut, samples_over_tiles  # Dask only for tiles

        weathered = (str(weather), weather_variable) if weather is not None else None
        plan = Cut(source, options, year, series, seed, weathered)
        mapping_file = Path(label_mapping) if label_mapping is not None else None
        engine = {"cluster": cluster, "workers": workers, "retries": retries, "grid": grid}
        counts = samples_over_tiles(str(cube), out, plan, split, mapping_file, mapping, **engine)
        print(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    cube_data = CubeDataModule(str(cube), **(options | ({"year": year} if year else {})))
    chosen = source.pick(cube_data.cube, seed)
    if mapping is not None and chosen["label"] is not None:
        report_unmapped(chosen["label"], mapping)
    counts = write_samples(
        cube_data.cube,
        cube_data.year,
        cube_data.season,
        chosen,
        split,
        seed,
        out,
        Path(label_mapping) if label_mapping is not None else None,
        Weather(weather, weather_variable) if weather is not None else None,
        series,
    )
    print(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def quicklook(  # noqa: A002 (the user's word)
    map: Path, output: Path | None = None, colours: Path | None = None
) -> None:
    """Render a class or probability map GeoTIFF as a PNG with a legend.

    The PNG shows coordinates, a scale bar (projected CRS in metres), the CRS, and the
    season and model the map records.

    Args:
        map: the class map GeoTIFF (or its probabilities file).
        output: the PNG (default: beside the map, `.png`).
        colours: YAML file `class: "#RRGGBB"` (or [R, G, B]) replacing the map's colours
            of the classes it names.
    """
    print(f"wrote {write_quicklook(Path(map), Path(output) if output else None, colours)}")


def demo(
    out: Path,
    points: int = 800,
    seasons: list[int] = [2019, 2020, 2021],  # noqa: B006
    warm_season: int | None = 2020,
    cube_size: int = 40,
    seed: int = 0,
    region: Region | None = None,
) -> None:
    """Generate the synthetic demo dataset (a samples folder and a raster cube).

    Sentinel-2-like series over French crop calendars, deterministic by seed.

    Args:
        out: output folder (created).
        points: number of points.
        seasons: seasons to simulate.
        warm_season: a season 2.5 degC warmer than normal (none: null).
        cube_size: cube side in pixels (0: no cube).
        seed: random seed.
        region: another farming region for the samples: `warmth` (°C added), `sowing_shift`
            (days), `soil` (brightness factor), `crops` (shares among arable land),
            `arable_share`, `name` (prefix of the point ids).
    """
    out = Path(out)
    if (out / "meta.yaml").exists():
        raise DataError(out, "already holds a dataset; choose another --out or remove it first")
    counts = generate(out, points, seasons, warm_season, cube_size, seed, region)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))


COMMANDS = {
    "extract": extract,
    "fewshot": fewshot,
    "samples": samples,
    "quicklook": quicklook,
    "demo": demo,
    "sweep": sweep,
    "federate": federate,
} | PRODUCTS
