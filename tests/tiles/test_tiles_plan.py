"""What a tiled run maps now: its manifest and the maps already in the output folder."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from cmap.errors import ConfigError, DataError
from cmap.tiles.command import Progress, clear, plan
from cmap.tiles.listing import list_tiles
from cmap.tiles.manifest import Manifest
from tests.tiles.test_tiles_mosaic import class_map


def test_tiles_come_from_patterns_paths_and_lists_named_after_their_files(tmp_path):
    for name in ("a.nc", "b.nc", "c.zarr"):
        (tmp_path / name).mkdir() if name.endswith(".zarr") else (tmp_path / name).write_text(".")
    (tmp_path / "T1").mkdir()
    (tmp_path / "list.txt").write_text(f"# tiles\n{tmp_path / 'T1'}\n\n")
    tiles = list_tiles([str(tmp_path / "*.nc"), str(tmp_path / "c.zarr"), f"@{tmp_path}/list.txt"])
    assert list(tiles) == ["a", "b", "c", "T1"] and tiles["T1"] == tmp_path / "T1"
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.nc").write_text(".")
    with pytest.raises(ConfigError, match="would both be mapped to a.tif"):
        list_tiles([str(tmp_path / "a.nc"), str(tmp_path / "x" / "a.nc")])
    with pytest.raises(DataError, match="missing.nc: tile not found"):
        list_tiles([str(tmp_path / "missing.nc")])


def test_maps_of_this_checkpoint_are_kept_others_refused_or_replaced(tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    tiles = {name: tmp_path / name for name in ("A", "B", "C", "D")}
    for name in ("A", "B", "C"):
        class_map(out / f"{name}.tif", np.zeros((2, 2), np.uint8))
    (out / "D.tif.parts").mkdir()  # unfinished: continued
    class_map(out / "D.tif", np.zeros((2, 2), np.uint8))
    manifest = Manifest(out)
    manifest.tiles["A"] = {"tile": str(tiles["A"]), "status": "done", "model": "m1"}
    manifest.tiles["B"] = {"tile": str(tiles["B"]), "status": "pending", "model": "m1"}
    manifest.tiles["C"] = {"tile": str(tiles["C"]), "status": "done", "model": "m0"}
    todo, kept, refused = plan(tiles, out, manifest, "m1", overwrite=False)
    assert list(todo) == ["D"] and list(kept) == ["A", "B"] and list(refused) == ["C"]
    assert kept["B"]["status"] == "done" and kept["B"]["pixels"] == 4  # finished, now recorded
    assert Manifest(out).tiles["B"]["sha256"]["B.tif"]
    assert "pass --overwrite true" in refused["C"] and (out / "C.tif").exists()
    todo, kept, refused = plan(tiles, out, manifest, "m1", overwrite=True)
    assert list(todo) == ["A", "B", "C", "D"] and not kept and not refused
    assert (out / "C.tif").exists()  # removed only once the tiles are checked
    clear(out, todo)
    assert not list(out.glob("*.tif")) and not (out / "D.tif.parts").exists()


def test_a_damaged_manifest_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json: is not a cmap tiles manifest"):
        Manifest(tmp_path)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [False, True])
def test_progress_is_one_line_per_tile_and_a_bar_on_a_terminal(monkeypatch, tty):
    stream = Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    progress = Progress(2)
    progress.tile("A", {"status": "done", "pixels": 1600, "seconds": 2.0, "resumed": True})
    progress.tile("B", {"status": "failed", "error": "B/x.tif: cannot be read"})
    text = stream.getvalue()
    lines = [line.rsplit("\033[K", 1)[-1] for line in text.split("\n") if "cmap: [" in line]
    assert lines == [
        "cmap: [1/2] A: 1,600 pixels in 2.0 s (800 pixels/s), resumed from its parts",
        "cmap: [2/2] B: FAILED: B/x.tif: cannot be read",
    ]
    assert ("[##############################] 2/2 tiles" in text) == tty
