"""Figures drawn in another process, so that training never waits for matplotlib.

`FigureWorker` starts `python -m cmap.reports.worker` and sends it figure requests (which
function of `cmap.reports.figures` and its plain arguments) as pickles on its stdin. The
worker runs at the lowest CPU priority (nice 19), so it draws with the CPU time training
leaves idle, and answers each request with the PNG; a thread of the training process writes
it as an image summary into the run's own TensorBoard event file (one file per run, so a live
TensorBoard keeps following the scalars) and, with `figures_dir`, to
`<figures_dir>/<tag>_epoch<step>.png`.

At the end of a stage, `close` draws what is left from both ends: the worker from the oldest
request, the training process (at normal priority) from the newest, so a worker starved by
other busy processes never holds the run up. The worker also ends when its stdin closes, e.g.
when training dies.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import queue
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
        self._pending: dict[int, tuple[str, str, int, tuple]] = {}  # requested, not drawn
        self._count = 0
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        # Two threads: one sends requests (it may wait on a full pipe, training never does),
        # one writes the answers.
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def draw(self, kind: str, tag: str, step: int, *args) -> None:
        """Queue `figures.<kind>(*args)` for `tag` at `step`; returns at once."""
        if kind not in KINDS:
            raise ValueError(f"unknown figure {kind}; one of {KINDS}")
        with self._lock:
            number, self._count = self._count, self._count + 1
            self._pending[number] = (kind, tag, step, args)
        self._outbox.put((number, kind, args))

    def _send(self) -> None:
        stream = self._process.stdin
        while (request := self._outbox.get()) is not None:
            try:
                pickle.dump(request, stream, protocol=5)
                stream.flush()
            except OSError:  # the worker is gone: `close` draws what is pending
                return
        with contextlib.suppress(OSError):
            stream.close()  # the worker ends after the requests it has

    def _receive(self) -> None:
        while True:
            try:
                number, png = pickle.load(self._process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                return
            with self._lock:
                request = self._pending.pop(number, None)  # None: `close` drew it
            if request is not None and png is not None:
                self._write(request[1], request[2], png)

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
            file_writer = self.writer.file_writer
            if file_writer is None:  # the logger was closed first: nowhere to write
                log.warning("figure %s of step %d not logged: TensorBoard writer closed", tag, step)
                return
            file_writer.add_summary(summary, step)

    def close(self) -> None:
        """Draw every figure not drawn yet, with the worker: it goes on from the oldest
        request while this process takes the newest ones, until none is left; then the
        worker is stopped (a starved worker never holds the run up)."""
        self._outbox.put(None)
        drawn = []
        while True:
            with self._lock:
                if not self._pending:
                    break
                number = next(reversed(self._pending))
                kind, tag, step, args = self._pending.pop(number)
            drawn.append((number, tag, step, render(kind, args)))
        self._process.terminate()
        self._process.wait()
        for thread in self._threads:
            thread.join()
        self._process.stdout.close()
        # Written after the worker's (older) ones and oldest first: steps of a tag stay in
        # order in the event file, as TensorBoard expects.
        for _, tag, step, png in sorted(drawn, key=lambda item: item[0]):
            if png is not None:
                self._write(tag, step, png)
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
