"""The mean of several models' predictions of the same pixels or points (e.g. the same config
trained with a few seeds): a seed ensemble, relabelled from the mean probabilities."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from cmap.errors import ConfigError, DataError
from cmap.io.maps import PRIOR_TAG, prior_tags, prior_values
from cmap.io.outputs import refuse_existing
from cmap.products.points import probabilities_of, read_points, stored_prior, write_points
from cmap.products.probabilities import (
    blocks,
    classes_of,
    map_output,
    open_probabilities,
    read_block,
)


def mean_prior(priors: list[str | None]) -> dict[str, str]:
    """The members' mean output prior as a tag; none unless every member records one."""
    values = [prior_values(p) for p in priors]
    if not values or any(v is None for v in values):
        return {}
    return prior_tags(np.mean(values, axis=0))


def average_maps(sources: list[Path], output: Path, probabilities: Path) -> None:
    """Mean probabilities of maps on one grid with the same classes, block by block; a pixel
    has a value where any member has one (their mean there)."""
    with ExitStack() as stack:
        members = [stack.enter_context(open_probabilities(Path(p))) for p in sources]
        first = members[0]
        for path, src in zip(sources[1:], members[1:]):
            if classes_of(src) != classes_of(first):
                raise DataError(
                    path, f"has classes {classes_of(src)}, {sources[0]} has {classes_of(first)}"
                )
            grid = (src.width, src.height, src.transform, src.crs)
            if grid != (first.width, first.height, first.transform, first.crs):
                raise DataError(path, f"is not on the grid of {sources[0]}")
        tags = {"ENSEMBLE": ", ".join(str(p) for p in sources)}
        tags |= mean_prior([src.tags().get(PRIOR_TAG) for src in members])
        with map_output(first, output, probabilities, tags) as write:
            for window in blocks(first.height, first.width):
                total, count = 0.0, 0
                for src in members:
                    p, missing = read_block(src, window)
                    total = total + np.where(missing, 0.0, p)
                    count = count + ~missing
                write(total / np.maximum(count, 1), count == 0, window)


def average_points(sources: list[Path], output: Path) -> None:
    """Mean probabilities of point predictions of the same rows; the first file's other
    columns, label and confidence from the mean."""
    tables = [read_points(path) for path in sources]
    first, columns = tables[0]
    keys = [c for c in ("poi_id", "season") if c in first.column_names]
    for path, (table, other) in zip(sources[1:], tables[1:]):
        if other != columns:
            raise DataError(path, f"has other classes than {sources[0]}")
        if len(table) != len(first) or any(not table[k].equals(first[k]) for k in keys):
            raise DataError(path, f"does not predict the same points, in order, as {sources[0]}")
    p = np.mean([probabilities_of(table, columns) for table, _ in tables], axis=0)
    metadata = mean_prior([stored_prior(table) for table, _ in tables])
    write_points(first, columns, p, metadata, output)


def average(sources: list[Path], output: Path, overwrite: bool) -> list[Path]:
    """Average probabilities GeoTIFFs or predictions parquets; returns the files written."""
    sources = [Path(p) for p in sources]
    if len(sources) < 2:
        raise ConfigError(f"give at least two predictions to average, got {len(sources)}")
    output = Path(output)
    points = {p.suffix.lower() == ".parquet" for p in sources}
    if len(points) > 1:
        raise ConfigError("give either probabilities GeoTIFFs or predictions parquets, not both")
    written = [output]
    if not points.pop():
        written.append(output.with_name(f"{output.stem}_probabilities.tif"))
    if {p.resolve() for p in written} & {p.resolve() for p in sources}:
        raise ConfigError(f"output {output} would replace one of its inputs")
    refuse_existing(*written, overwrite=overwrite)
    if len(written) == 1:
        average_points(sources, output)
    else:
        average_maps(sources, output, written[1])
    return written
