"""Many tiles in one command: `cmap predict --tiles ...` maps each tile with `cmap predict` on
a Dask cluster (an embedded `LocalCluster` by default), keeps a manifest of what is done and
mosaics the maps as GDAL VRTs (docs/guide/country.md)."""
