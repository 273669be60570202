"""What a sweep searches: the space of config values, as trial suggestions and cmap
arguments."""

from __future__ import annotations

import json
from typing import Any

from cmap.errors import ConfigError

KINDS = ("float", "int", "categorical")


def check_space(space: dict[str, dict], sampler: str) -> None:
    """Each key is a cmap argument (`model.init_args...`, `data.init_args...`) with
    {type: float|int, low, high[, log, step]} or {type: categorical, choices}; a grid needs
    choices everywhere."""
    if not space:
        raise ConfigError("sweep: `space` names no value to search")
    for key, spec in space.items():
        kind = spec.get("type")
        if kind not in KINDS:
            raise ConfigError(f"sweep: {key}: type must be one of {KINDS}, got {kind!r}")
        if kind == "categorical" and not spec.get("choices"):
            raise ConfigError(f"sweep: {key}: a categorical value needs `choices`")
        if kind != "categorical" and not {"low", "high"} <= set(spec):
            raise ConfigError(f"sweep: {key}: a {kind} value needs `low` and `high`")
        if sampler == "grid" and kind != "categorical":
            raise ConfigError(f"sweep: {key}: a grid takes categorical values (choices) only")


def suggest(trial, space: dict[str, dict]) -> dict[str, Any]:
    """The trial's value for every key of `space`."""
    values = {}
    for key, spec in space.items():
        if spec["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["type"] == "int":
            values[key] = trial.suggest_int(
                key, spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
            )
        else:
            values[key] = trial.suggest_float(
                key, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
    return values


def as_arguments(values: dict[str, Any]) -> list[str]:
    """{key: value} -> ["--key", "value", ...] as the cmap command takes them."""
    out = []
    for key, value in values.items():
        text = (
            json.dumps(value)
            if isinstance(value, (list, dict, bool)) or value is None
            else str(value)
        )
        out += [f"--{key}", text]
    return out
