"""Figures drawn in another process, so that training never waits for matplotlib.

`FigureWorker` starts `python -m cmap.reports.worker` and sends it figure requests (which
function of `cmap.reports.figures` and its plain arguments) as pickles on its stdin. The
worker runs at the lowest CPU priority (nice 19), so it draws with the CPU time training
leaves idle, and answers each request with the PNG; a thread of the training process writes
it as an image summary into the run's own TensorBoard event file (one file per run, so a live
TensorBoard keeps following the scalars) and, with `figures_dir`, to
`<figures_dir>/<tag>_epoch<step>.png`.

`close` (the end of a stage) stops the worker and draws whatever it has not answered yet in
the training process, at normal priority: a worker starved by other busy processes never
holds the run up. The worker also ends when its stdin closes, e.g. when training dies.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary

log = logging.getLogger(__name__)

# Requests name one of these functions of cmap.reports.figures.
KINDS = ("confusion_figure", "distribution_figure", "attention_figure", "ndvi_figure")


def render(kind: str, args: tuple) -> bytes | None:
    """PNG of `figures.<kind>(*args)` at 100 dpi; None (and the error logged) if it fails."""
    import matplotlib.pyplot as plt

    from cmap.reports import figures

    try:
        fig = getattr(figures, kind)(*args)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
    except Exception:  # a bad figure is reported and skipped; training goes on
        log.exception("figure %s failed", kind)
        return None
    return buffer.getvalue()


class FigureWorker:
    """A figure-drawing process and the thread that writes what it draws.

    Args:
        writer: the run's TensorBoard `SummaryWriter` (None: PNG files only).
        figures_dir: folder for PNG copies (None: TensorBoard only).
    """

    def __init__(self, writer, figures_dir: str | None):
        self.writer = writer
        self.figures_dir = Path(figures_dir) if figures_dir else None
        path = os.pathsep.join(p for p in sys.path if p)  # cmap importable as it is here
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cmap.reports.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=os.environ | {"PYTHONPATH": path, "MPLBACKEND": "Agg"},
        )
        self._pending: dict[int, tuple[str, str, int, tuple]] = {}  # sent, not answered
        self._count = 0
        self._lock = threading.Lock()
        self._broken = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def draw(self, kind: str, tag: str, step: int, *args) -> None:
        """Queue `figures.<kind>(*args)` for `tag` at `step`. Returns at once, unless the
        worker is so far behind that the pipe's buffer is full: then training waits for it."""
        if kind not in KINDS:
            raise ValueError(f"unknown figure {kind}; one of {KINDS}")
        with self._lock:
            number, self._count = self._count, self._count + 1
            self._pending[number] = (kind, tag, step, args)
        if self._broken:
            return  # drawn by `close`
        try:
            pickle.dump((number, kind, args), self._process.stdin, protocol=5)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._broken = True
            log.warning("the figure worker stopped; the remaining figures are drawn at the end")

    def _receive(self) -> None:
        while True:
            try:
                number, png = pickle.load(self._process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                return
            with self._lock:
                _, tag, step, _ = self._pending.pop(number)
            if png is not None:
                self._write(tag, step, png)

    def _write(self, tag: str, step: int, png: bytes) -> None:
        if self.figures_dir is not None:
            path = self.figures_dir / f"{tag.replace('/', '_')}_epoch{step:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        if self.writer is not None:
            width, height = struct.unpack(">II", png[16:24])  # the PNG header's IHDR chunk
            image = Summary.Image(
                height=height, width=width, colorspace=4, encoded_image_string=png
            )
            summary = Summary(value=[Summary.Value(tag=tag, image=image)])
            # The event file's writer queues events, so this thread and training can both log.
            self.writer._get_file_writer().add_summary(summary, step)

    def close(self) -> None:
        """Stop the worker and draw here, in order, every figure it has not answered."""
        self._process.terminate()
        self._process.wait()
        self._thread.join()  # it reads the answers written before the end, then EOF
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()
            except OSError:  # requests never sent: they are among the pending ones
                pass
        for kind, tag, step, args in self._pending.values():
            png = render(kind, args)
            if png is not None:
                self._write(tag, step, png)
        self._pending.clear()
        if self.writer is not None:
            self.writer.flush()


def main() -> None:
    """The worker: (number, kind, args) on stdin, (number, png or None) on stdout, until
    stdin closes."""
    os.nice(19)  # draw (and import matplotlib) on the CPU time training leaves idle
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach answers
    while True:
        try:
            number, kind, args = pickle.load(requests)
        except EOFError:
            return
        pickle.dump((number, render(kind, args)), answers, protocol=5)
        answers.flush()


if __name__ == "__main__":
    main()
