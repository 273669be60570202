"""The map-product commands (`cmap uncertainty`, `cmap smooth`, ...), as typed functions whose
signatures jsonargparse reads for `cmap <command> --help`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cmap.io.outputs import derived, refuse_existing
from cmap.products.assessment import assess as assess_map
from cmap.products.assessment import summary
from cmap.products.ensemble import average as average_predictions
from cmap.products.parcels import as_paths, parcel_map
from cmap.products.priors import adjust_priors
from cmap.products.sampling import reference_sample
from cmap.products.smoothing import smooth_probabilities
from cmap.products.uncertainty import write_uncertainty
from cmap.reports.quicklook import write_quicklook


def uncertainty(
    probabilities: Path,
    output: Path | None = None,
    quicklook: bool = True,
    overwrite: bool = False,
) -> None:
    """Per-pixel uncertainty of a crop map from its class probabilities.

    Writes one float32 GeoTIFF aligned with the map, bands: entropy (normalised: 0 certain,
    1 uniform), margin (first minus second class probability: low is unsure) and least
    confidence (1 minus the first class probability); NaN where the map has no value.

    Args:
        probabilities: the map's probabilities GeoTIFF (`<map>_probabilities.tif`, written
            by `cmap predict` with `probabilities: true`).
        output: the uncertainty GeoTIFF (default: `<map>_uncertainty.tif` beside it).
        quicklook: also render its entropy as `<output stem>.png`.
        overwrite: replace an existing output.
    """
    output = Path(output) if output else derived(Path(probabilities), "uncertainty")
    pictures = [output.with_suffix(".png")] if quicklook else []
    refuse_existing(output, *pictures, overwrite=overwrite)
    written = write_uncertainty(Path(probabilities), output, overwrite)
    print(f"wrote {written}")
    if quicklook:
        print(f"wrote {write_quicklook(written)}")


def smooth(
    probabilities: Path,
    output: Path | None = None,
    method: Literal["bayes", "gaussian", "majority"] = "bayes",
    window: int = 9,
    smoothness: float | list[float] = 20.0,
    neigh_fraction: float = 0.5,
    sigma: float = 1.0,
    overwrite: bool = False,
) -> None:
    """Smooth a crop map's class probabilities spatially and label the result.

    Removes the isolated wrong pixels of a pixel-wise map. Pixels without a value are left
    out of every neighbourhood; the result does not depend on how the map is cut into
    blocks. Writes a class map and its probabilities, in the layout of `cmap predict`.

    Args:
        probabilities: the map's probabilities GeoTIFF (`<map>_probabilities.tif`).
        output: the smoothed class map (default: `<map>_smoothed.tif`); its probabilities go
            to `<output stem>_probabilities.tif`.
        method: `bayes` (sits' Bayesian smoothing of the class logits), `gaussian` (the
            Gaussian-weighted mean of the neighbours' probabilities) or `majority` (each
            class's share of the neighbours' labels).
        window: side of the neighbourhood in pixels, odd (bayes, majority).
        smoothness: bayes: the variance of a pixel's class logits, one value or one per
            class; larger values follow the neighbours more (sits' default: 20).
        neigh_fraction: bayes: the share of valid neighbours, likeliest first, whose logits
            make the neighbourhood's mean and variance.
        sigma: gaussian: the kernel's standard deviation in pixels (it reaches 3 sigma).
        overwrite: replace existing outputs.
    """
    source = Path(probabilities)
    output = Path(output) if output else derived(source, "smoothed")
    written = smooth_probabilities(
        source, output, method, window, smoothness, neigh_fraction, sigma, overwrite
    )
    for path in written:
        print(f"wrote {path}")


def assess(
    map: Path,  # noqa: A002 (the user's word)
    reference: Path,
    output: Path | None = None,
    label_column: str = "label",
    label_band: str | None = None,
    label_mapping: Path | None = None,
    buffer: float = 0.0,
    overwrite: bool = False,
) -> None:
    """Assess a crop map against reference labels and estimate each class's area.

    The confusion matrix (rows: map, columns: reference), overall accuracy, kappa, macro-F1,
    and with the map's classes as strata of a stratified random sample (as `cmap reference`
    draws), the estimates of Olofsson et al. (2014): each class's area with its standard
    error and 95 % confidence interval, user's and producer's accuracy with their standard
    errors. Writes `<output>.json`, `<output>.csv` (one row per class) and `<output>.png`
    (mapped against estimated areas).

    Args:
        map: a class map GeoTIFF written by `cmap predict` or `cmap smooth`.
        reference: the reference labels: a points table (CSV with x, y or lon, lat and
            label), a vector file of points or polygons (GeoPackage, GeoParquet, Shapefile,
            FlatGeobuf; needs the geo extra) or a label raster aligned with the map.
        output: the outputs' path without suffix (default: `<map>_assessment`).
        label_column: the vector file's label column.
        label_band: the label variable of a NetCDF / Zarr label raster.
        label_mapping: YAML `class: [codes]` turning reference codes into the map's classes.
        buffer: shrink reference polygons by this distance (map CRS units) first.
        overwrite: replace existing outputs.
    """
    map_path = Path(map)
    output = Path(output) if output else map_path.with_name(f"{map_path.stem}_assessment")
    result = assess_map(
        map_path,
        Path(reference),
        output,
        label_column,
        label_band,
        Path(label_mapping) if label_mapping else None,
        buffer,
        overwrite,
    )
    print(summary(result))
    for suffix in (".json", ".csv", ".png"):
        print(f"wrote {output.with_name(output.name + suffix)}")


def reference(
    map: Path,  # noqa: A002 (the user's word)
    output: Path | None = None,
    per_class: int | None = None,
    total: int | None = None,
    min_per_class: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> None:
    """Draw a stratified random sample of a crop map to label as reference.

    Each map class is a stratum; the sample is drawn without replacement and seeded. The
    points (pixel centres) carry `poi_id`, `map_class`, an empty `label` to fill in with
    what is seen on the ground or in imagery, x, y in the map's CRS and lon, lat (WGS 84);
    once labelled, `cmap assess MAP POINTS` estimates the map's accuracy and areas.

    Args:
        map: a class map GeoTIFF written by `cmap predict` or `cmap smooth`.
        output: the points: .gpkg, .geojson, .fgb, .parquet (GeoParquet) (the geo extra) or
            .csv (default: `<map>_reference.gpkg`).
        per_class: this many points in every class.
        total: this many points in all, shared in proportion to the classes' areas.
        min_per_class: with `total`: at least this many points per class (rare classes
            need some for their accuracy; Olofsson et al. 2014 suggest 50 to 100).
        seed: the random seed: the same seed draws the same points.
        overwrite: replace an existing output.
    """
    map_path = Path(map)
    output = Path(output) if output else map_path.with_name(f"{map_path.stem}_reference.gpkg")
    sizes = reference_sample(map_path, output, per_class, total, min_per_class, seed, overwrite)
    print("drawn per class: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    print(f"wrote {output}")


def parcels(
    probabilities: Path | list[Path],
    parcels: Path,
    output: Path | None = None,
    id_column: str | None = None,
    method: Literal["mean", "majority"] = "mean",
    buffer: float = 0.0,
    min_pixels: int = 1,
    overwrite: bool = False,
) -> None:
    """Give each parcel of a vector file a class from a crop map's probabilities.

    A pixel belongs to the parcel holding its centre. Each parcel gets the class of the
    highest mean probability over its valid pixels (or of most pixels' votes), that class's
    probability, the margin to the second class, its pixel counts and the mean probability
    of every class (`p_<class>`); a parcel without enough valid pixels gets no class and a
    `reason`. The parcels keep their own columns and geometry. Only the parcels that overlap
    the map are read and written (the others are counted), so a national register serves
    one tile; given several tiles' maps, a parcel gets its pixels from each. Works window by
    window on maps larger than memory; a stopped run continues where it was.

    Args:
        probabilities: the map's probabilities GeoTIFF (`<map>_probabilities.tif`, from
            `cmap predict` with `probabilities: true`, or `cmap smooth`), or several maps of
            one model as a list (tiles, any CRS each): `"[a_probabilities.tif,
            b_probabilities.tif]"`; pixels where tiles overlap count once per map.
        parcels: the parcels: GeoPackage, GeoParquet, Shapefile, FlatGeobuf, GeoJSON (needs
            the geo extra); any CRS.
        output: the parcel map: .gpkg, .geojson, .fgb or .parquet (default:
            `<map>_parcels.gpkg`).
        id_column: the parcels' identifier column (checked to be unique).
        method: `mean` (mean probabilities) or `majority` (share of the pixels' votes).
        buffer: shrink each parcel by this distance (map CRS units) first, to drop the mixed
            pixels of its border.
        min_pixels: parcels with fewer valid pixels get no class.
        overwrite: replace an existing parcel map.
    """
    first = (as_paths(probabilities) or [Path("map")])[0]
    output = Path(output) if output else derived(first, "parcels", ".gpkg")
    counts = parcel_map(
        probabilities, Path(parcels), output, id_column, method, buffer, min_pixels, overwrite
    )
    print("parcels: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"wrote {output}")


def priors(
    predictions: Path,
    output: Path | None = None,
    prior: dict[str, float] | list[float] | None = None,
    reference_prior: dict[str, float] | list[float] | None = None,
    max_pixels: int = 1_000_000,
    seed: int = 0,
    overwrite: bool = False,
) -> None:
    """Move predictions to a new season's class mix (EM) and relabel them.

    The model's probabilities carry its training's class prior (its output prior, which
    `cmap predict` records). Without `prior`, the new data's prior is estimated by EM from
    the probabilities themselves (Saerens et al. 2002); then every probability is moved to
    it by Bayes' rule. A crop frequent in the new data stops losing pixels to crops that were
    weighed up in training. Writes the adjusted predictions in their input's layout and
    `<output stem>_priors.json` (the priors and each class's share before and after).

    Args:
        predictions: a map's probabilities GeoTIFF (`<map>_probabilities.tif`) or the point
            predictions parquet of `cmap predict`.
        output: the adjusted class map (its probabilities go to `<stem>_probabilities.tif`)
            or predictions parquet (default: `<stem>_adjusted.tif` / `.parquet`).
        prior: the new data's class shares (e.g. from crop statistics) instead of estimating
            them: by class name (`"{maize: 40, wheat: 35, ...}"`, classes not named: 0) or
            one per class in the model's order; normalised.
        reference_prior: the class shares the model's probabilities carry, for predictions
            of a model that recorded none (e.g. the training shares), given alike.
        max_pixels: a map's prior is estimated on a random sample of this many pixels.
        seed: seed of that sample.
        overwrite: replace existing outputs.
    """
    settings = {"prior": prior, "reference": reference_prior, "max_pixels": max_pixels}
    result, written = adjust_priors(Path(predictions), output, settings | {"seed": seed}, overwrite)
    rows = zip(
        result["classes"],
        result["reference"],
        result["prior"],
        result["share_before"],
        result["share_after"],
    )
    print(f"{'class':<20} reference  prior  share before  after   ({result['method']})")
    for name, ref, new, before, after in rows:
        print(f"{name:<20} {ref:9.3f} {new:6.3f} {before:13.3f} {after:6.3f}")
    for path in written:
        print(f"wrote {path}")


def average(
    predictions: list[Path],
    output: Path | None = None,
    overwrite: bool = False,
) -> None:
    """Average several models' predictions (a seed ensemble) and relabel them.

    The mean of their class probabilities, relabelled: e.g. the maps of one config trained
    with three seeds, each `cmap predict`ed with `probabilities: true`. Maps must share grid
    and classes (a pixel has a value where any of them has one); point predictions must
    list the same points in the same order. The output is in the inputs' layout; it records
    the members (`ENSEMBLE`) and their mean output prior (for `cmap priors`).

    Args:
        predictions: two or more probabilities GeoTIFFs (`<map>_probabilities.tif`) or
            predictions parquets, as a list: `"[a_probabilities.tif, b_probabilities.tif]"`.
        output: the averaged class map (its probabilities go to `<stem>_probabilities.tif`)
            or predictions parquet (default: `<first input's stem>_ensemble.tif` /
            `.parquet` beside it).
        overwrite: replace existing outputs.
    """
    first = Path(predictions[0]) if predictions else Path("predictions")
    suffix = ".parquet" if first.suffix.lower() == ".parquet" else ".tif"
    output = Path(output) if output else derived(first, "ensemble", suffix)
    for path in average_predictions(list(predictions), output, overwrite):
        print(f"wrote {path}")


PRODUCTS = {
    "average": average,
    "priors": priors,
    "parcels": parcels,
    "uncertainty": uncertainty,
    "smooth": smooth,
    "assess": assess,
    "reference": reference,
}
