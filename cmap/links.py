"""How a command's model follows its data: the sizes linked from the data module, band names
matched to a checkpoint's, and `cmap predict`'s `--output` handed to the prediction writer."""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

from jsonargparse import Namespace

from cmap.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Model settings that follow the data: (path under the model's config, data attribute).
# A path applies only where the configured class takes that argument, so one table serves
# the Classifier and the AutoEncoder, classification and reconstruction heads. (Not
# LightningCLI's `link_arguments`: a link there must always have its target, and these are
# also compared with a checkpoint's values before anything is built.)
DATA_LINKS = (
    ("encoder.init_args.bands_encoder.init_args.in_bands", "num_bands"),
    ("encoder.init_args.in_bands", "num_bands"),  # encoders without a bands embedding
    ("decoder.init_args.out_bands", "num_bands"),
    ("decoder.init_args.num_classes", "num_classes"),
    ("classes", "classes"),
    ("bands", "channels"),
)


def link_data(config, data, subcommand: str | None):
    """Set the model's sizes from `data` (checked against a checkpoint's); returns the
    data module, rebuilt when its bands had to be put in the checkpoint's order."""
    model = config.model
    checkpoint = config.get("ckpt_path")
    for path, attribute in DATA_LINKS:
        owner, _, name = f"init_args.{path}".rpartition(".")
        spec = model.get(owner.rpartition(".")[0]) if owner != "init_args" else model
        if not accepts(spec, name):
            continue
        value, current = getattr(data, attribute, None), model.get(f"init_args.{path}")
        if value is None or value == []:  # e.g. a cube for prediction has bands but no classes
            continue
        if checkpoint and current is None and path == "bands":
            log.warning(
                "%s records no band names (made by an older cmap): the data's bands %s are "
                "taken to be the model's, in this order",
                checkpoint,
                value,
            )
        if checkpoint and current is not None and current != value:
            if subcommand == "predict" and attribute in ("classes", "num_classes"):
                continue
            if path == "bands":
                data = bands_in_order(config, data, list(current), Path(checkpoint))
                value = data.channels
            else:
                raise DataError(
                    Path(checkpoint),
                    f"the model was trained with {name} = {show(current)} but the data "
                    f"gives {show(value)}; use data with the model's bands and classes "
                    "(to start a new model from these weights, extract the encoder with "
                    "`cmap extract` and set encoder_weights_path)",
                )
        model[f"init_args.{path}"] = value
    check_positions(model, data)
    return data


def check_positions(model, data) -> None:
    """The model's position embedding takes the positions the data gives (days or growing
    degree days): refused before any output, not at the first batch."""
    spec = model.get("init_args.encoder.init_args.position_encoder")
    given = data.positions
    if spec is None or not spec.get("class_path"):
        return
    embedding = import_object(spec["class_path"])
    takes = embedding.positions
    if takes and takes != given:
        words = {"days": "calendar days", "gdd": "growing degree days"}
        raise ConfigError(
            f"the model's position embedding {embedding.__name__} takes {words[takes]} but "
            f"the data gives {words[given]} (positions: {given}); set the data's positions: "
            f"{takes}" + (" with its temperature or weather" if takes == "gdd" else "")
        )


def import_object(path: str):
    """The class named by a resolved `class_path` (module.Name)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def construct(spec):
    """Instantiate a `class_path` + `init_args` spec; an argument that is such a spec itself
    (e.g. the data module's `replay`) is instantiated first."""
    args = {}
    for key, value in vars(spec.get("init_args") or Namespace()).items():
        if isinstance(value, Namespace):
            value = construct(value) if value.get("class_path") else value.as_dict()
        args[key] = value
    return import_object(spec.class_path)(**args)


WRITERS = ("cmap.callbacks.CubeMapWriter", "cmap.callbacks.PointPredictionWriter")


def set_writer(config, data, output: str | None, overwrite: bool) -> None:
    """`--output`/`--overwrite` of `cmap predict` go to the configured prediction writer (a
    map writer for a cube, a point writer otherwise), added when the config has none."""
    if output is None and not overwrite:
        return
    callbacks = config.trainer.get("callbacks") or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    kinds = tuple(map(import_object, WRITERS))
    writers = [
        c
        for c in callbacks
        if isinstance(c, Namespace) and issubclass(import_object(c.class_path), kinds)
    ]
    if not writers:
        name = WRITERS[0] if getattr(data, "mappable", False) else WRITERS[1]
        writers = [Namespace(class_path=name, init_args=Namespace())]
        config.trainer.callbacks = [*callbacks, *writers]
    for writer in writers:
        if output is not None:
            writer.init_args.output = output
        writer.init_args.overwrite = overwrite


def bands_in_order(config, data, trained: list[str], checkpoint: Path):
    """The data module with its input channels in the order the model was trained with:
    the same names in another order are put in the model's order (the data module is built
    again with `bands` given); other names are refused with both lists."""
    channels = list(data.channels)
    extras = channels[len(data.bands) :]
    bands = trained[: len(trained) - len(extras)]
    if (
        sorted(channels) != sorted(trained)
        or trained[len(bands) :] != extras
        or not accepts(config.data, "bands")
    ):
        raise DataError(
            checkpoint,
            f"the model was trained with the bands {trained} but the data has {channels}; "
            "give data with the model's bands (named as in training; `bands` picks and orders "
            "them)",
        )
    config.data.init_args.bands = bands
    log.info("data bands %s put in the model's order %s", channels, trained)
    return construct(config.data)


def accepts(spec, name: str) -> bool:
    """Whether the class of a `class_path` spec takes an argument `name`."""
    if spec is None or not spec.get("class_path"):
        return False
    return name in inspect.signature(import_object(spec.class_path)).parameters


def show(value) -> str:
    return f"{len(value)} {value}" if isinstance(value, list) else str(value)
