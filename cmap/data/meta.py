"""A dataset's `meta.yaml` and the settings it supplies: an argument given to a data module
wins, else the `meta.yaml` value, else the documented default."""

from __future__ import annotations

from pathlib import Path

from cmap.data.season import DEFAULT_LENGTH, DEFAULT_START, Season
from cmap.errors import DataError
from cmap.io.yaml_files import load_yaml


def read_meta(root: str | Path) -> dict:
    """The dataset's optional `meta.yaml` as a dict ({} when absent)."""
    path = Path(root) / "meta.yaml"
    if not path.exists():
        return {}
    meta = load_yaml(path, "meta.yaml") or {}
    if not isinstance(meta, dict):
        raise DataError(path, f"must be a mapping of keys to values, found {type(meta).__name__}")
    return checked(meta, path)


NUMBERS = ("nodata", "scale")
NAMES = ("bands", "classes")


def checked(meta: dict, path: Path) -> dict:
    """The settings of a meta.yaml with their types checked: numbers (a number written as
    a string, `nodata: "-9999"`, is read as the number), lists of distinct names, `[low,
    high]`, `MM-DD`; anything else is refused naming the key, never ignored."""
    meta = dict(meta)
    for key in NUMBERS:
        if meta.get(key) is not None:
            meta[key] = _number(meta[key], path, key)
    if meta.get("scale") is not None and not meta["scale"] > 0:
        raise DataError(path, f"scale must be positive, got {meta['scale']:g}")
    for key in NAMES:
        names = meta.get(key)
        if names is None:
            continue
        if not isinstance(names, list) or not names:
            raise DataError(path, f"{key} must be a list of names, got {names!r}")
        names = [str(n) for n in names]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataError(path, f"{key} names {repeated} more than once")
        meta[key] = names
    bounds = meta.get("value_range")
    if bounds is not None:
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise DataError(path, f"value_range must be [low, high], got {bounds!r}")
        meta["value_range"] = [_number(b, path, "value_range") for b in bounds]
    if meta.get("season_start") is not None or meta.get("season_year") is not None:
        try:
            Season(
                str(meta.get("season_start", DEFAULT_START)),
                DEFAULT_LENGTH,
                str(meta.get("season_year", "end")),
            )
        except DataError as err:
            raise DataError(path, err.problem) from None
    return meta


def _number(value, path: Path, key: str) -> float:
    if isinstance(value, bool):
        raise DataError(path, f"{key} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(path, f"{key} must be a number, got {value!r}") from None


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
        season_year: str | None = None,
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
            str(season_year or meta.get("season_year", "end")),
        )
