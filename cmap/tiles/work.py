"""One tile on a worker: `cmap predict` of that cube in a child process (its own memory and
threads; it dies with the worker), resumed from the map's parts when an earlier attempt was
cut short."""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import rasterio

from cmap.io.maps import NODATA

USER_ERROR = 2  # `cmap`'s exit code for input the user must fix: not retried
LAST_LINES = 20  # of the child's stderr, kept for the message of a failed tile


class TileFailed(RuntimeError):
    """A tile's `cmap predict` ended without a map (Dask retries the task)."""


@dataclass
class Outcome:
    """What became of one tile (a manifest entry)."""

    tile: str
    status: str  # "done" or "failed"
    seconds: float = 0.0
    pixels: int = 0
    sha256: dict | None = None
    resumed: bool = False
    error: str | None = None
    worker: str | None = None
    peak_rss_mb: float | None = None

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


def _die_with_parent() -> None:
    """In the child, before it runs: SIGKILL when the worker that started it goes (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def valid_pixels(path: Path) -> int:
    """Pixels of a class map that are not nodata, read block by block."""
    count = 0
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            count += int((src.read(1, window=window) != NODATA).sum())
    return count


def finished(output: Path) -> Outcome:
    """The outcome of a map that is complete (no parts left)."""
    files = [output, output.with_name(f"{output.stem}_probabilities.tif")]
    sums = {p.name: sha256(p) for p in files if p.exists()}
    return Outcome(str(output), "done", pixels=valid_pixels(output), sha256=sums)


def predict_tile(command: list[str], tile: str, output: str, threads: int) -> dict:
    """Run `cmap predict COMMAND --data.init_args.cube TILE --output OUTPUT`; the outcome as a
    manifest record. A map already complete (an earlier attempt finished it) is not redone;
    a user error (bad data) is a failed outcome; any other ending raises `TileFailed`."""
    out = Path(output)
    parts = out.with_name(out.name + ".parts")
    worker = f"{os.uname().nodename}:{os.getpid()}"
    if out.exists() and not parts.exists():  # finished by an attempt cut short after it
        outcome = finished(out)
        outcome.tile, outcome.worker = tile, worker
        return outcome.record()
    resumed = parts.is_dir()
    argv = [sys.executable, "-m", "cmap", "predict", *command]
    argv += ["--data.init_args.cube", tile, "--output", output]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    child = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_die_with_parent,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True)
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    seconds = round(time.perf_counter() - start, 2)
    peak = round(usage.ru_maxrss / 1024, 1)  # kB on Linux
    if child.returncode == 0 and out.exists() and not parts.exists():
        outcome = finished(out)
        outcome.tile, outcome.seconds, outcome.resumed = tile, seconds, resumed
        outcome.worker, outcome.peak_rss_mb = worker, peak
        return outcome.record()
    said = [line.strip() for line in lines if line.strip()][-LAST_LINES:]
    errors = [line for line in said if line.startswith("cmap: error:")]
    last = errors[-1].removeprefix("cmap: error: ") if errors else (said[-1] if said else "")
    if child.returncode == USER_ERROR:
        return Outcome(tile, "failed", seconds, error=last, worker=worker).record()
    code = child.returncode
    reason = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
    raise TileFailed(f"{tile}: cmap predict ended with {reason}: {last or 'no message'}")
