"""The `cmap` command (also `python -m cmap` and `python -m cmap.main`): Lightning's
fit/validate/test/predict through `CMapCLI`, and the commands of `cmap.commands`."""

from __future__ import annotations

import logging
import sys
import warnings

from jsonargparse import CLI

from cmap.cli import CMapCLI
from cmap.commands import COMMANDS
from cmap.errors import exits_on_user_error

# Messages a user cannot act on (Lightning's and torch's own, printed on every run).
QUIET = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*The dirpath has changed from .*",
    r".*Couldn't infer the batch indices fetched from your dataloader.*",
    r".*is smaller than the logging interval Trainer\(log_every_n_steps.*",
)


class _Stderr(logging.Handler):
    """Writes each record to whatever `sys.stderr` is when the record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _no_tips(record: logging.LogRecord) -> bool:
    return "💡 Tip" not in record.getMessage()


def console() -> None:
    """cmap's own log lines on stderr as `cmap: ...`; known noise silenced."""
    logger = logging.getLogger("cmap")
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("cmap: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    for message in QUIET:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "pytorch_lightning.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_no_tips)  # added once, however often main runs


@exits_on_user_error
def main(args: list[str] | None = None) -> None:
    """Run `cmap ARGS` (default: the process's own arguments)."""
    console()
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] and argv[0] in COMMANDS:
        name = argv[0]
        CLI(
            COMMANDS[name],
            args=argv[1:],
            prog=f"cmap {name}",
            as_positional=True,
            allow_abbrev=False,
        )
        return
    if argv[:1] == ["predict"] and any(a == "--tiles" or a.startswith("--tiles=") for a in argv):
        from cmap.tiles.command import predict_tiles  # Dask only when tiles are asked for

        predict_tiles(argv[1:])
        return
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if argv else 2)
    CMapCLI(args)


LIGHTNING = {
    "fit": "train a model (Classifier, AutoEncoder, Contrastive, ProtoNet) from YAML",
    "validate": "score a checkpoint on the validation split",
    "test": "score a checkpoint on the test split (metrics, confusion matrix)",
    "predict": "predict with a checkpoint: a map of a cube (--tiles: of many), or points",
}


def usage() -> str:
    """`cmap --help`: every command with what it does."""

    def first_line(fn) -> str:
        return fn.__doc__.split("\n")[0].rstrip(".")

    rows = [*LIGHTNING.items(), *((name, first_line(fn)) for name, fn in COMMANDS.items())]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {text}" for name, text in rows]
    return "\n".join(
        [
            "usage: cmap COMMAND [options]      (cmap COMMAND --help: the command's options)",
            "",
            "Training and evaluation take a YAML config: cmap fit --config configs/demo.yaml",
            "",
            "commands:",
            *lines[: len(LIGHTNING)],
            "",
            "tools:",
            *lines[len(LIGHTNING) :],
        ]
    )


if __name__ == "__main__":
    main()
