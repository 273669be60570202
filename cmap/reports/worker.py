"""Figures drawn in another process, so that training never waits for matplotlib.

`FigureWorker` starts `python -m cmap.reports.worker` and sends it figure requests (which
function of `cmap.reports.figures`, its plain arguments, tag and step) as pickles on its
stdin. The worker draws each one and answers with the PNG; a thread of the training process
writes it as an image summary into the run's own TensorBoard event file (one file per run, so
a live TensorBoard keeps following the scalars) and, with `figures_dir`, to
`<figures_dir>/<tag>_epoch<step>.png`. `close` waits until every requested figure is written.
The worker runs at the lowest CPU priority (nice 19), so on a busy machine it draws with the
CPU time training leaves idle. It ends when its stdin closes, including when the training
process dies.
"""

from __future__ import annotations

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
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()
        self._broken = False

    def draw(self, kind: str, tag: str, step: int, *args) -> None:
        """Queue `figures.<kind>(*args)` for `tag` at `step`. Returns at once, unless the
        worker is so far behind that the pipe's buffer is full: then training waits for it."""
        if kind not in KINDS:
            raise ValueError(f"unknown figure {kind}; one of {KINDS}")
        if self._broken:
            return
        try:
            pickle.dump((kind, tag, step, args), self._process.stdin, protocol=5)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._broken = True
            log.warning("the figure worker stopped (see its error above); no more figures")

    def _receive(self) -> None:
        while True:
            try:
                tag, step, png = pickle.load(self._process.stdout)
            except (EOFError, pickle.UnpicklingError):
                return
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
        """Wait until every queued figure is drawn and written, then stop the worker."""
        try:
            self._process.stdin.close()
        except OSError:
            pass
        self._process.wait()
        self._thread.join()
        if self.writer is not None:
            self.writer.flush()


def main() -> None:
    """The worker: requests on stdin, (tag, step, png) on stdout, until stdin closes."""
    os.nice(19)  # draw (and import matplotlib) on the CPU time training leaves idle
    import io

    import matplotlib.pyplot as plt

    from cmap.reports import figures

    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach answers
    while True:
        try:
            kind, tag, step, args = pickle.load(requests)
        except EOFError:
            return
        try:
            fig = getattr(figures, kind)(*args)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=100)
            plt.close(fig)
        except Exception:  # a bad figure is reported and skipped; training goes on
            log.exception("figure %s (%s, step %d) failed", tag, kind, step)
            continue
        pickle.dump((tag, step, buffer.getvalue()), answers, protocol=5)
        answers.flush()


if __name__ == "__main__":
    main()
