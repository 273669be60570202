"""Figures drawn in another process, so that training never waits for matplotlib.

`FigureWorker` starts `python -m cmap.reports.worker`, which runs at the lowest CPU priority
(nice 19), so it draws with the CPU time training leaves idle. A one-thread executor of the
training process hands it the requests one at a time (which function of
`cmap.reports.figures` and its plain arguments, pickled), waits for the PNG and writes it as
an image summary into the run's own TensorBoard event file (one file per run, so a live
TensorBoard keeps following the scalars) and, with `figures_dir`, to
`<figures_dir>/<tag>_epoch<step>.png`.

At the end of a stage, `close` draws what is left from both ends: the worker from the oldest
request, the training process (at normal priority) from the newest, so a worker starved by
other busy processes never holds the run up. The worker also ends when its stdin closes,
e.g. when training dies. (A `multiprocessing` pool would re-import the parent's main module,
torch and Lightning included, in the child: 3.4 s of CPU per run against 0.45 s here.)
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary

log = logging.getLogger(__name__)

# Requests name one of these functions of cmap.reports.figures.
KINDS = (
    "confusion_figure",
    "distribution_figure",
    "attention_figure",
    "ndvi_figure",
    "views_figure",
)
GRACE_S = 2.0  # how long `close` lets the worker finish the figure it is drawing


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
    """A figure-drawing process and the thread that talks to it.

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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="figures")
        self._requests: list[tuple[Future, str, str, int, tuple]] = []  # in submission order

    def draw(self, kind: str, tag: str, step: int, *args) -> None:
        """Queue `figures.<kind>(*args)` for `tag` at `step`; returns at once."""
        if kind not in KINDS:
            raise ValueError(f"unknown figure {kind}; one of {KINDS}")
        future = self._executor.submit(self._remote, kind, tag, step, args)
        self._requests.append((future, kind, tag, step, args))

    def _remote(self, kind: str, tag: str, step: int, args: tuple) -> bool:
        """Have the worker draw one figure and write it; False when the worker is gone."""
        try:
            pickle.dump((kind, args), self._process.stdin, protocol=5)
            self._process.stdin.flush()
            png = pickle.load(self._process.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            return False  # ValueError: `close` closed the pipes
        if png is not None:  # None: the figure failed (logged by the worker) and is skipped
            self._write(tag, step, png)
        return True

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
        """Draw every figure not drawn yet, from both ends: the worker goes on from the
        oldest request while this process takes the newest ones it has not started; the
        worker then has `GRACE_S` to finish the one it is drawing before it is stopped and
        this process draws that one too."""
        drawn: dict[int, bytes | None] = {}
        for number in reversed(range(len(self._requests))):
            future, kind, _, _, args = self._requests[number]
            if future.cancel():  # not started by the worker
                drawn[number] = render(kind, args)
        wait([future for future, *_ in self._requests], timeout=GRACE_S)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._process.terminate()
        self._process.wait()
        self._executor.shutdown(wait=True)  # a request still in flight ends at once
        # Oldest first, after the worker's (older) ones: steps of a tag stay in order in the
        # event file, as TensorBoard expects.
        for number, (future, kind, tag, step, args) in enumerate(self._requests):
            if number not in drawn and not future.result():  # the worker could not draw it
                drawn[number] = render(kind, args)
            if drawn.get(number) is not None:
                self._write(tag, step, drawn[number])
        self._requests.clear()
        if self.writer is not None:
            self.writer.flush()


def main() -> None:
    """The worker: (kind, args) on stdin, the PNG (or None) on stdout, one answer per
    request, until stdin closes."""
    os.nice(19)  # draw (and import matplotlib) on the CPU time training leaves idle
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not reach answers
    while True:
        try:
            kind, args = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(render(kind, args), answers, protocol=5)
        answers.flush()


if __name__ == "__main__":
    main()
