"""The demo data: synthetic Sentinel-2 L2A-like crop time series over French crop calendars.

Deterministic by seed. Writes a samples folder (docs/reference/data_formats.md §1:
train/val/test with features.pq, labels.pq, temperatures.pq; meta.yaml; label_mapping.yaml
with RPG codes) and a small raster cube (§2: one GeoTIFF per date, UTM 31N, 10 m) with its
labelled points.

How the series are made:
- Daily air temperature per point: a seasonal cycle, regional weather (AR(1)), a per-point
  offset, and a warmer `warm_season`. Phenology runs on growing degree days (base 0 °C) from
  the season start, so in the warm season every stage comes earlier in calendar days.
- Each class has a calendar of green, dry and flower cover fractions (normal-year days since
  1 November); a date's cover is read at the normal-year day with the same thermal time,
  jittered per point in timing and amplitude.
- Reflectance mixes leaf, dry matter, yellow flowers and a per-point soil by those fractions,
  with class-specific leaf spectra, per-date and per-band noise.
- A `Region` changes where this happens: warmer or cooler, sowing earlier or later, brighter
  or darker soils, another crop mix (point ids prefixed with its name).
- 5-day revisit; cloudy dates removed with a month-dependent probability (winter cloudier);
  a few undetected bright clouds are left in.
"""

from cmap.data.demo.calendars import Region
from cmap.data.demo.writers import generate

__all__ = ["Region", "generate"]
