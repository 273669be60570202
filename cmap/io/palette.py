"""Class colours of maps. The default follows common land-cover conventions, matched on class
names in English or French: crops take their colours in the USDA Cropland Data Layer, other
land cover those of CORINE Land Cover (so meadows are yellow-green, water blue, forest green),
`other` is grey, and classes no convention names get distinct tab20 colours. A YAML file of
`class: "#RRGGBB"` (or `[R, G, B]`) overrides any of them."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import matplotlib

from cmap.errors import DataError
from cmap.io.yaml_files import load_yaml

RGB = tuple[int, int, int]

# (name phrases, colour), first match wins: a phrase matches from the start of a word of the
# class name ("wheat" matches "winter_wheat", "ble" matches "ble_tendre").
CONVENTIONS: tuple[tuple[tuple[str, ...], RGB], ...] = (
    (("durum", "ble dur"), (137, 96, 83)),
    (("wheat", "ble", "froment"), (168, 112, 0)),
    (("barley", "orge", "escourgeon"), (226, 0, 124)),
    (("maize", "mais", "corn"), (255, 211, 0)),
    (("sunflower", "tournesol"), (255, 255, 0)),
    (("rapeseed", "colza", "canola"), (209, 255, 0)),
    (("soy", "soja"), (38, 112, 0)),
    (("cotton", "coton"), (255, 38, 38)),
    (("rice", "riz"), (0, 168, 228)),
    (("sorghum", "sorgho"), (255, 158, 11)),
    (("oat", "avoine"), (160, 89, 137)),
    (("rye", "seigle"), (172, 0, 124)),
    (("triticale",), (214, 157, 188)),
    (("potato", "pomme de terre"), (112, 38, 0)),
    (("beet", "betterave"), (168, 0, 226)),
    (("alfalfa", "luzerne", "clover", "trefle"), (255, 168, 227)),
    (("pea", "pois", "bean", "feve", "lentil"), (84, 255, 0)),
    (("vine", "vigne", "grape", "orchard", "verger"), (242, 166, 77)),
    (("fallow", "jachere"), (191, 191, 122)),
    (("non forest", "shrub", "savanna", "cerrado", "lande"), (166, 230, 77)),
    (("forest", "foret", "tree", "wood", "bois"), (0, 166, 0)),
    (("grass", "meadow", "prairie", "pasture", "pature", "hay", "herb"), (230, 230, 77)),
    (("water", "eau", "river", "lake"), (128, 242, 230)),
    (("wetland", "marsh", "marais"), (166, 166, 255)),
    (("urban", "built", "artificial", "bati", "road"), (230, 0, 77)),
    (("bare", "sol nu", "deforest", "rock"), (204, 191, 163)),
    (("other", "autre"), (190, 190, 190)),
)


def words(name: str) -> str:
    """A class name as lower-case ASCII words: `NatNonForest` -> `nat non forest`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", ascii_name)
    return " ".join(re.findall(r"[a-z0-9]+", spaced.lower()))


def convention(name: str) -> RGB | None:
    """The conventional colour of a class name, None when no convention names it."""
    text = f" {words(name)}"
    for phrases, colour in CONVENTIONS:
        if any(f" {phrase}" in text for phrase in phrases):
            return colour
    return None


SHADES = (1.0, 0.7, 0.5, 1.3)  # a conventional colour, then darker and lighter variants


def class_colours(classes: list[str], overrides: dict[str, RGB] | None = None) -> list[RGB]:
    """One colour per class: the override, else the convention (a darker or lighter shade of
    it when an earlier class took it: `meadow` after `grassland`), else the next tab20
    colour not taken."""
    overrides = overrides or {}
    spare = [
        tuple(int(round(255 * v)) for v in matplotlib.colormaps["tab20"](k)[:3]) for k in range(20)
    ]
    chosen: list[RGB] = []
    for name in classes:
        if name in overrides:
            chosen.append(tuple(overrides[name]))
            continue
        base = convention(name)
        shades = [shade(base, f) for f in SHADES] if base else []
        free = [c for c in [*shades, *spare] if c not in chosen] or spare
        chosen.append(free[0])
    return chosen


def shade(colour: RGB, factor: float) -> RGB:
    """Darker (factor < 1) or lighter (> 1, towards white) variant of a colour."""
    if factor <= 1:
        return tuple(int(round(c * factor)) for c in colour)
    return tuple(int(round(c + (255 - c) * (factor - 1) / factor)) for c in colour)


def read_colours(path: str | Path, classes: list[str]) -> dict[str, RGB]:
    """A YAML file `class: "#RRGGBB"` or `class: [R, G, B]` (0-255) of some of `classes`."""
    path = Path(path)
    raw = load_yaml(path, "colours")
    if not isinstance(raw, dict):
        raise DataError(path, 'must map class names to colours, e.g. `mais: "#ffd300"`')
    colours = {}
    for name, value in raw.items():
        if str(name) not in classes:
            raise DataError(path, f"class '{name}' is not one of the map's classes {classes}")
        colours[str(name)] = _parse(value, path, str(name))
    return colours


def _parse(value, path: Path, name: str) -> RGB:
    if isinstance(value, str) and re.fullmatch(r"#?[0-9a-fA-F]{6}", value):
        digits = value.lstrip("#")
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and 0 <= v <= 255 for v in value)
    ):
        return tuple(value)
    raise DataError(
        path, f"colour of '{name}' must be \"#RRGGBB\" or [R, G, B] in 0-255, got {value!r}"
    )
