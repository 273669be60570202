"""`cmap fewshot`: few-shot scores of a trained encoder on a labelled samples folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import ArgumentParser

from cmap.errors import DataError
from cmap.fewshot.episodes import evaluate_episodes, sample_episodes
from cmap.fewshot.features import labelled_split, split_features
from cmap.io.atomic import atomic_path
from cmap.io.checkpoints import check_checkpoint, encoder_from_checkpoint, find_checkpoint
from cmap.io.outputs import refuse_existing
from cmap.models.base import Encoder
from cmap.tasks.weights import load_encoder_weights


def load_encoder(model: Path) -> tuple[Encoder, list[str] | None]:
    """(encoder with its weights, its band names if recorded) from a checkpoint (file or run
    folder) or a folder holding what `cmap extract` writes."""
    parser = ArgumentParser()
    parser.add_argument("--encoder", type=Encoder)
    extracted = model / "encoder.safetensors"
    if model.is_dir() and extracted.exists():
        spec = yaml.safe_load((model / "encoder.yaml").read_text())
        encoder = parser.instantiate_classes(parser.parse_object({"encoder": spec})).encoder
        load_encoder_weights(encoder, extracted)
        return encoder, None
    checkpoint = find_checkpoint(model)
    tensors, spec = encoder_from_checkpoint(checkpoint)
    encoder = parser.instantiate_classes(parser.parse_object({"encoder": spec})).encoder
    encoder.load_state_dict(tensors)
    return encoder, check_checkpoint(checkpoint).get("hyper_parameters", {}).get("bands")


def fewshot(
    model: Path,
    root: Path,
    split: Literal["train", "val", "test"] = "test",
    k_shot: list[int] = [5, 10],  # noqa: B006
    n_way: int | None = None,
    n_query: int = 15,
    episodes: int = 600,
    seed: int = 0,
    centre: bool = True,
    output: Path | None = None,
    overwrite: bool = False,
) -> None:
    """Few-shot scores of an encoder: nearest class mean on K-shot episodes.

    Every series of the split goes through the encoder once; its per-date features are
    max-pooled over valid dates, centred and put on the unit sphere (EASY, Bendou et al.
    2022). Seeded episodes then draw K support and `n_query` query series per class; queries
    take the class of the nearest support mean. Prints mean accuracy and macro-F1 with 95 %
    confidence half-widths over the episodes.

    Args:
        model: a checkpoint of any cmap task (.ckpt file or run folder, as `cmap extract`
            takes) or a folder with encoder.safetensors and encoder.yaml (`cmap extract`).
        root: labelled samples folder (the model's bands; a checkpoint's band order is used).
        split: the split episodes are drawn from.
        k_shot: support series per class, one score per value.
        n_way: classes per episode (default: every class with more than K series).
        n_query: query series per class and episode.
        episodes: episodes per K.
        seed: seed of the episodes.
        centre: centre and normalise the features first.
        output: JSON file for the scores.
        overwrite: replace an existing `output`.
    """
    model, root = Path(model), Path(root)
    if output is not None:
        refuse_existing(Path(output), overwrite=overwrite)
    if not model.exists():
        raise DataError(model, "no such checkpoint or encoder folder")
    encoder, bands = load_encoder(model)
    dataset = labelled_split(None, split, root, bands)
    features, labels = split_features(encoder, dataset)
    results = {}
    for k in k_shot:
        drawn = sample_episodes(labels, k, n_way, n_query, episodes, seed)
        scores = evaluate_episodes(features, drawn, centre)
        results[f"{k}shot"] = scores
        print(
            f"{scores['n_way']}-way {k}-shot ({episodes} episodes, {split} of {root}): "
            f"accuracy {scores['accuracy']:.3f} ± {scores['accuracy_ci95']:.3f}, "
            f"macro-F1 {scores['f1_macro']:.3f} ± {scores['f1_macro_ci95']:.3f}"
        )
    if output is not None:
        with atomic_path(Path(output)) as partial:
            partial.write_text(
                json.dumps({"model": str(model), "root": str(root)} | results, indent=2)
            )
        print(f"wrote {output}")
