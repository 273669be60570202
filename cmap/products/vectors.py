"""Writing a product's points or parcels as a vector file (format by suffix; geopandas, the
geo extra) or, for points, a CSV table."""

from __future__ import annotations

import warnings
from pathlib import Path

from cmap.errors import ConfigError
from cmap.io.atomic import atomic_path

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".fgb": "FlatGeobuf", ".parquet": None}


def check_vector_output(output: Path, table: bool = False) -> None:
    """Refuse, before any work, an output whose suffix names no format cmap writes."""
    allowed = (".csv", *DRIVERS) if table else tuple(DRIVERS)
    if output.suffix.lower() not in allowed:
        raise ConfigError(f"{output}: name a {', '.join(allowed)} output")


def geopandas_module():
    try:
        import geopandas
    except ImportError as err:
        raise ConfigError(
            "writing a vector file needs geopandas (pip install 'cmap[geo]')"
        ) from err
    return geopandas


def write_frame(frame, output: Path) -> None:
    """A GeoDataFrame written whole or not at all (GeoParquet for .parquet)."""
    with atomic_path(output) as partial:
        driver = DRIVERS[output.suffix.lower()]
        if driver is None:
            frame.to_parquet(partial)
            return
        with warnings.catch_warnings():  # the temporary name's suffix is not the format's
            warnings.filterwarnings("ignore", "The filename extension should be")
            frame.to_file(partial, driver=driver, engine="pyogrio")
