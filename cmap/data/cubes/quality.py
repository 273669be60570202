"""Quality bands (cloud masks, Sentinel-2's scene classification): which values keep a
pixel's date and which mask it, as configuration."""

from __future__ import annotations

import numpy as np

from cmap.errors import ConfigError

SCL_KEEP = (4, 5, 6, 7)  # Sentinel-2 L2A SCL: vegetation, not vegetated, water, unclassified
SCL_CLASSES = range(12)  # 0 no data ... 11 snow or ice


def quality_rule(band: str | None, masked, keep) -> tuple[np.ndarray, np.ndarray | None]:
    """(values that mask, values that alone keep or None) of a quality band; a band without
    either rule would mask nothing, so it needs one (SCL has a default)."""
    if band is None:
        return np.zeros(0), None
    if masked is not None and keep is not None:
        raise ConfigError("give quality_masked or quality_keep, not both")
    if band.upper() == "SCL":
        given = [*(masked or []), *(keep or [])]
        unknown = [v for v in given if v not in SCL_CLASSES]
        if unknown:
            raise ConfigError(
                f"quality values {unknown} are no class of Sentinel-2's scene classification "
                "(SCL: 0 no data to 11 snow; vegetation 4, bare soil 5, water 6, unclassified "
                "7, cloud shadow 3, clouds 8-10)"
            )
    if masked is None and keep is None:
        if band.upper() != "SCL":
            raise ConfigError(
                f"quality_band {band} needs quality_masked (values that mask a date) or "
                "quality_keep (the only values that keep it)"
            )
        keep = SCL_KEEP
    if keep is not None:
        return np.zeros(0), np.asarray(keep, dtype=np.float64)
    return np.asarray(masked, dtype=np.float64), None
