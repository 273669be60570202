"""A dataset's `meta.yaml` and the settings it supplies: an argument given to a data module
wins, else the `meta.yaml` value, else the documented default."""

from __future__ import annotations

from pathlib import Path

import yaml

from cmap.data.season import DEFAULT_LENGTH, DEFAULT_START, Season
from cmap.errors import DataError


def read_meta(root: str | Path) -> dict:
    """The dataset's optional `meta.yaml` as a dict ({} when absent)."""
    path = Path(root) / "meta.yaml"
    if not path.exists():
        return {}
    try:
        meta = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({err})") from err
    if not isinstance(meta, dict):
        raise DataError(path, f"must be a mapping of keys to values, found {type(meta).__name__}")
    return meta


class Settings:
    """Reading settings shared by every layout (bands, scale, nodata, season), each from the
    arguments, else `meta.yaml`, else the default."""

    def __init__(
        self,
        meta: dict,
        bands: list[str] | None = None,
        scale: float | None = None,
        nodata: float | None = None,
        season_start: str | None = None,
        season_length: int = DEFAULT_LENGTH,
    ):
        self.bands = (
            list(bands)
            if bands
            else ([str(b) for b in meta["bands"]] if meta.get("bands") else None)
        )
        self.scale = float(scale if scale is not None else meta.get("scale", 1.0))
        self.nodata = nodata if nodata is not None else meta.get("nodata")
        self.season = Season(
            str(season_start or meta.get("season_start", DEFAULT_START)),
            int(season_length),
        )
