"""What a map's parts were made with (`<map>.parts/settings.json`), so that a resumed
prediction only ever continues the same map: the same windows, classes, outputs, cube files
and model weights."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch
from rasterio.windows import Window

from cmap.io.atomic import atomic_path, remove
from cmap.io.maps import NODATA

RECORD = "settings.json"
NAMES = {
    "windows": "window size",
    "classes": "classes",
    "outputs": "probability outputs",
    "sources": "cube files",
    "model": "model weights",
}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def map_settings(
    windows: list[Window], classes: list[str], outputs: list, sources: list[Path] | None
) -> dict:
    """The settings a map's parts depend on (the model's weights are added once loaded)."""
    files = [(p.name, p.stat().st_size) for p in sources or []]
    grid = [(int(w.col_off), int(w.row_off), int(w.width), int(w.height)) for w in windows]
    return {
        "windows": _digest(grid),
        "classes": list(classes),
        "outputs": list(outputs),
        "sources": _digest(files),
        "model": None,
    }


def model_fingerprint(module: torch.nn.Module) -> str:
    """A digest of every tensor of the model's state."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def part_files(parts: Path, clean: bool = False) -> dict[int, Path]:
    """The finished parts, by window number (`w<number>.npz`); with `clean`, writes cut short
    by a kill or a full disk (`*.partial*`) are removed first."""
    if clean:
        for leftover in parts.glob("*.partial*"):
            remove(leftover)
    found = (re.fullmatch(r"w(\d+)\.npz", p.name) for p in parts.iterdir())
    return {int(m.group(1)): parts / m.group(0) for m in found if m}


def read_record(parts: Path) -> dict | None:
    path = parts / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def write_record(parts: Path, record: dict) -> None:
    with atomic_path(parts / RECORD) as partial:
        partial.write_text(json.dumps(record, indent=1))


def differences(recorded: dict | None, current: dict) -> list[str]:
    """What differs between the recorded settings and these, in words; a setting recorded as
    unknown (None) or a record from an older cmap (None) matches."""
    if recorded is None:
        return []
    return [
        NAMES[key]
        for key, value in current.items()
        if value is not None and recorded.get(key) is not None and recorded[key] != value
    ]


def empty_windows(parts: Path, output: Path, total: int) -> str | None:
    """What to say of the finished parts' windows without a valid pixel (nodata), if any."""
    empty = sum((np.load(p)["classes"] == NODATA).all() for p in part_files(parts).values())
    if empty == total:
        return (
            f"cmap: {output} holds no valid pixel: every pixel of the cube is nodata, NaN or "
            "masked by the quality band at every date (check nodata and quality_masked)"
        )
    return f"cmap: {empty} of {total} windows had no valid pixel (nodata)" if empty else None
