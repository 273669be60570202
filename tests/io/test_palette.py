"""Map colours: land-cover conventions by class name, distinct shades, YAML overrides."""

from __future__ import annotations

import pytest

from cmap.errors import DataError
from cmap.io.palette import class_colours, convention, read_colours, words


def test_class_names_in_english_or_french_get_their_conventional_colours():
    assert words("NatNonForest") == "nat non forest" and words("Blé_Dur") == "ble dur"
    assert convention("mais") == convention("Maize") == convention("corn") == (255, 211, 0)
    assert convention("ble_tendre") == convention("winter_wheat") == (168, 112, 0)
    assert convention("ble_dur") == convention("durum wheat") == (137, 96, 83)
    assert convention("NatNonForest") != convention("Forest") == (0, 166, 0)
    assert convention("other") == (190, 190, 190) and convention("xyz") is None
    grass, water = convention("grassland"), convention("water")
    assert grass == convention("Prairie permanente") and grass[2] < grass[0]  # not blue
    assert water[2] > water[0]


def test_every_class_gets_a_distinct_colour():
    classes = ["grassland", "meadow", "winter wheat", "spring wheat", "xyz", "abc"]
    colours = class_colours(classes)
    assert len(set(colours)) == len(classes)
    assert colours[0] == convention("grassland")
    meadow = colours[1]  # a darker shade of the same yellow-green, not a tab20 blue
    assert meadow == tuple(round(c * 0.7) for c in convention("grassland"))
    assert class_colours(["a", "mais"], {"a": (1, 2, 3)}) == [(1, 2, 3), (255, 211, 0)]


def test_colours_files_are_checked(tmp_path):
    path = tmp_path / "colours.yaml"
    path.write_text('mais: "#FFD300"\nother: [10, 20, 30]\n')
    assert read_colours(path, ["other", "mais"]) == {"mais": (255, 211, 0), "other": (10, 20, 30)}
    for text, problem in [
        ("colza: [1, 2, 3]\n", "class 'colza' is not one of the map's classes"),
        ("mais: red\n", "colour of 'mais' must be \"#RRGGBB\" or [R, G, B] in 0-255"),
        ("mais: [1, 2, 300]\n", "in 0-255, got [1, 2, 300]"),
        ("- mais\n", "must map class names to colours"),
    ]:
        path.write_text(text)
        with pytest.raises(DataError, match="colours.yaml") as err:
            read_colours(path, ["other", "mais"])
        assert problem in str(err.value)
