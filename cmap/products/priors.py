"""Class priors of a new season or region: re-estimated from the model's own probabilities by
EM (Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a classifier to new a
priori probabilities"), or given (e.g. last season's crop statistics), and the probabilities
adjusted to them.

A model's probabilities carry the class prior of its training: its output prior, the mean
of its probabilities over validation data (recorded as `OUTPUT_PRIOR` by `cmap predict`).
Where the new data's classes are mixed differently, Bayes' rule gives the posterior under
the new prior: p'(k | x) ∝ p(k | x) prior[k] / reference[k]. EM finds the prior that equals
the mean of the posteriors it makes. A class frequent in the new data is then no longer
given away to classes that were rare there but weighed up in training.

Works on a probabilities GeoTIFF (EM on a seeded sample of its pixels, then block by block)
and on the point predictions parquet of `cmap predict`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cmap.errors import ConfigError, DataError
from cmap.io.maps import PRIOR_TAG, prior_tags, prior_values
from cmap.io.outputs import derived, refuse_existing
from cmap.products.points import probabilities_of, read_points, stored_prior, write_points
from cmap.products.probabilities import (
    blocks,
    classes_of,
    map_output,
    open_probabilities,
    read_block,
)

FLOOR = 1e-6  # priors are kept above this: no class's odds are divided by 0


def adjust(p: np.ndarray, reference: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Probabilities [N, K] under `reference` -> under `prior` (Bayes' rule)."""
    q = p * (np.maximum(prior, FLOOR) / np.maximum(reference, FLOOR))
    return q / np.maximum(q.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)


def em_prior(
    p: np.ndarray, reference: np.ndarray, tol: float = 1e-6, max_iter: int = 1000
) -> tuple[np.ndarray, int]:
    """The prior [K] of the data behind probabilities p [N, K] (made under `reference`),
    by EM from `reference`; and the iterations it took."""
    p = np.asarray(p, dtype=np.float64)
    prior = np.asarray(reference, dtype=np.float64)
    iterations, change = 0, np.inf
    while change >= tol and iterations < max_iter:
        new = adjust(p, reference, prior).mean(axis=0)
        change, prior, iterations = np.abs(new - prior).max(), new, iterations + 1
    return prior, iterations


def parse_prior(text: str | None, classes: list[str], where: Path) -> np.ndarray | None:
    values = prior_values(text)
    if values is None:
        return None
    if len(values) != len(classes):
        raise DataError(where, f"{PRIOR_TAG} holds {len(values)} values for {len(classes)} classes")
    return np.array(values)


def checked_prior(values, classes: list[str], name: str) -> np.ndarray:
    """A prior given in the command line, normalised: one non-negative value per class, in
    class order or by class name (classes not named: 0)."""
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(classes))
        if unknown:
            raise ConfigError(f"{name} names unknown class(es) {unknown}; the classes: {classes}")
        values = [values.get(c, 0.0) for c in classes]
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(classes),) or (values < 0).any() or values.sum() <= 0:
        raise ConfigError(
            f"{name} needs {len(classes)} non-negative values (classes {classes}), got "
            f"{values.tolist()}"
        )
    return values / values.sum()


def resolve(source, classes, stored, settings: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The reference prior (given, else stored with the predictions) and the given prior."""
    reference, prior = settings["reference"], settings["prior"]
    prior = None if prior is None else checked_prior(prior, classes, "prior")
    if reference is not None:
        reference = checked_prior(reference, classes, "reference_prior")
    elif stored is None:
        raise DataError(
            source,
            f"records no output prior ({PRIOR_TAG}): it was predicted by a model saved before "
            "cmap recorded one; give --reference_prior (the training class shares)",
        )
    else:
        reference = stored / stored.sum()
    return reference, prior


def map_sample(src, max_pixels: int, seed: int) -> np.ndarray:
    """Probabilities [n, K] of about `max_pixels` valid pixels drawn at random (seeded)."""
    valid = sum(int((src.read_masks(1, window=w) > 0).sum()) for w in blocks(src.height, src.width))
    rate, rng, drawn = min(1.0, max_pixels / max(valid, 1)), np.random.default_rng(seed), []
    for window in blocks(src.height, src.width):
        p, missing = read_block(src, window)
        keep = ~missing & (rng.random(missing.shape) < rate)
        drawn.append(p[:, keep].T)
    return np.concatenate(drawn)


def adjust_map(source: Path, output: Path, probabilities: Path, settings: dict) -> dict:
    """Re-prior a probabilities GeoTIFF: writes the class map `output` and `probabilities`."""
    with open_probabilities(source) as src:
        classes = classes_of(src)
        stored = parse_prior(src.tags().get(PRIOR_TAG), classes, source)
        reference, prior = resolve(source, classes, stored, settings)
        sample = map_sample(src, settings["max_pixels"], settings["seed"])
        if not len(sample):
            raise DataError(source, "has no pixel with a value")
        result = estimate(sample, classes, reference, prior)
        shift = {"PRIOR_SHIFT": f"{result['method']}, from {source.name}"}
        tags = prior_tags(result["prior"]) | shift
        with map_output(src, output, probabilities, tags) as write:
            for window in blocks(src.height, src.width):
                p, missing = read_block(src, window)
                k, h, w = p.shape
                flat = adjust(p.reshape(k, -1).T, reference, np.array(result["prior"]))
                write(flat.T.reshape(k, h, w), missing, window)
    return result


def estimate(p: np.ndarray, classes, reference: np.ndarray, prior: np.ndarray | None) -> dict:
    """The new prior (EM unless given) and the class shares before and after, as a record."""
    iterations = 0
    if prior is None:
        prior, iterations = em_prior(p, reference)
    after = adjust(p, reference, prior)
    return {
        "classes": list(classes),
        "method": "given" if iterations == 0 else "EM (Saerens et al. 2002)",
        "iterations": iterations,
        "samples": len(p),
        "reference": [round(float(v), 6) for v in reference],
        "prior": [round(float(v), 6) for v in prior],
        "share_before": shares(p.argmax(axis=1), len(classes)),
        "share_after": shares(after.argmax(axis=1), len(classes)),
    }


def shares(labels: np.ndarray, k: int) -> list[float]:
    return [round(float(v), 6) for v in np.bincount(labels, minlength=k) / max(len(labels), 1)]


def adjust_points(source: Path, output: Path, settings: dict) -> dict:
    """Re-prior a `cmap predict` predictions parquet into `output` (same columns)."""
    table, columns = read_points(source)
    classes = [c.removeprefix("p_") for c in columns]
    stored = parse_prior(stored_prior(table), classes, source)
    reference, prior = resolve(source, classes, stored, settings)
    p = probabilities_of(table, columns)
    result = estimate(p, classes, reference, prior)
    after = adjust(p, reference, np.array(result["prior"]))
    write_points(table, columns, after, prior_tags(result["prior"]), output)
    return result


def adjust_priors(
    source: Path, output: Path | None, settings: dict, overwrite: bool
) -> tuple[dict, list[Path]]:
    """Adjust predictions (probabilities GeoTIFF or predictions parquet) to a new prior;
    returns the record (also written as `<output stem>_priors.json`) and the files written."""
    source = Path(source)
    points = source.suffix.lower() == ".parquet"
    output = (
        Path(output) if output else derived(source, "adjusted", ".parquet" if points else ".tif")
    )
    record = output.with_name(f"{output.stem}_priors.json")
    written = [output] if points else [output, output.with_name(f"{output.stem}_probabilities.tif")]
    if source.resolve() in {p.resolve() for p in written}:
        raise ConfigError(f"output {output} would replace its own input")
    refuse_existing(*written, record, overwrite=overwrite)
    if points:
        result = adjust_points(source, output, settings)
    else:
        result = adjust_map(source, output, written[1], settings)
    record.write_text(json.dumps(result | {"source": str(source)}, indent=1) + "\n")
    return result, [*written, record]
