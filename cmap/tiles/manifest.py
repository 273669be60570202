"""`manifest.json` of a tiled run: per tile its status (pending, done, failed), valid pixels,
seconds, checksums and error; what a re-run reads to finish only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

from cmap.errors import DataError
from cmap.io.atomic import atomic_path
from cmap.tiles.work import sha256

NAME = "manifest.json"


def file_digest(path: Path) -> str:
    """sha256 of a file (the checkpoint a run's maps come from), first 16 hex digits."""
    return sha256(path)[:16]


class Manifest:
    """The manifest of an output folder, saved whole (atomically) at every change."""

    def __init__(self, folder: Path):
        self.path = folder / NAME
        self.data: dict = {"tiles": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
                assert isinstance(self.data.get("tiles"), dict)
            except (ValueError, AssertionError):
                raise DataError(
                    self.path, "is not a cmap tiles manifest (move it away to start over)"
                ) from None

    @property
    def tiles(self) -> dict[str, dict]:
        return self.data["tiles"]

    def set(self, name: str, record: dict) -> None:
        self.tiles[name] = record
        self.save()

    def save(self) -> None:
        with atomic_path(self.path) as partial:
            partial.write_text(json.dumps(self.data, indent=1) + "\n")
