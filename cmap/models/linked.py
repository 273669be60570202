"""Sizes that the `cmap` command fills in from the data (see `cmap.cli.DATA_LINKS`)."""

from __future__ import annotations

from typing import TypeVar

from cmap.errors import ConfigError

T = TypeVar("T")


def linked(value: T | None, owner: str, name: str) -> T:
    """`value`, which the CLI sets from the data; building a block by hand must give it."""
    if value is None:
        raise ConfigError(
            f"{owner}: {name} is not set; the cmap command sets it from the data, give it "
            "when building the model in Python"
        )
    return value
