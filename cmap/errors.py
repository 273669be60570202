"""User-facing errors and the exit policy: the ground floor every part of cmap may import.

A `CmapError` is the user's to fix (bad data, settings that do not fit, an output that
already exists): the `cmap` command prints it as one line, `cmap: error: ...`, and exits
with code 2. Any other exception is a bug in cmap and keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from pathlib import Path


class CmapError(Exception):
    """An error the user can act on; its message says what to change."""


class DataError(CmapError, ValueError):
    """Input that does not follow the documented formats (docs/reference/data_formats.md): one short
    paragraph naming the file (when there is one) and the problem."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ConfigError(CmapError, ValueError):
    """Settings that do not fit together or with the data (a model block refusing them)."""


class OutputExistsError(CmapError, FileExistsError):
    """An output that is already there and would be overwritten."""


def preview(values, limit: int = 5) -> str:
    """A short, readable list of offending values: `a, b, c (and 12 more)`."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown if len(values) <= limit else f"{shown} (and {len(values) - limit} more)"


def causes(err: BaseException | None):
    """`err` and what it was raised from or while handling, innermost last. jsonargparse and
    Lightning wrap errors raised while building the model or the data."""
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def user_error(err: BaseException | None) -> CmapError | None:
    """The `CmapError` behind `err`, if any."""
    return next((e for e in causes(err) if isinstance(e, CmapError)), None)


DISK = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def disk_error(err: BaseException | None) -> str | None:
    """`<file>: <reason>` when `err` comes from a full disk, a quota, a read-only place or
    missing permissions: the user's machine, not a bug."""
    for e in causes(err):
        if isinstance(e, OSError) and e.errno in DISK:
            where = f"{e.filename}: " if e.filename else ""
            return f"{where}{e.strerror} (what was finished is kept; a rerun continues)"
    return None


def misconfiguration(err: BaseException | None) -> str | None:
    """Lightning's own refusal of a setting (`max_epochs: -5`), which is the user's to fix."""
    found = (e for e in causes(err) if type(e).__name__ == "MisconfigurationException")
    return next((str(e) for e in found), None)


def exits_on_user_error(function):
    """`function`, but a user error ends the process with one line, `cmap: error: ...`, and
    exit code 2 instead of a traceback; a closed output pipe ends it quietly."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except BrokenPipeError:  # the reader went away (`cmap --help | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as err:
            cause = user_error(err) or disk_error(err) or misconfiguration(err)
            if cause is None:
                raise
            print(f"cmap: error: {cause}", file=sys.stderr)
            sys.exit(2)

    return run
