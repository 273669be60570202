"""Raster cubes: the kinds of cube cmap opens, tried in this order (`OPENERS`; a kind of
your own goes first with `register`)."""

from cmap.data.cubes.geotiff import GEOTIFF
from cmap.data.cubes.source import OPENERS
from cmap.data.cubes.stack import STAC, STACK

OPENERS[:] = [STAC, STACK, GEOTIFF]
