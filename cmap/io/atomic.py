"""Outputs that appear whole or not at all: written under a temporary name beside the final
one, then renamed into place (a rename within a folder is atomic)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def partial_path(path: Path) -> Path:
    """The temporary name `path` is written under: `<name>.partial`, beside it."""
    return path.with_name(path.name + ".partial")


def remove(path: Path) -> None:
    """Delete a file or a folder tree, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def commit(partial: Path, path: Path) -> None:
    """Move a finished `partial` (file or folder) to `path`, replacing what is there. A file
    gets the user's usual permissions (some writers create theirs private, 0600)."""
    if partial.is_file():
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(partial, path)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield the temporary name to write `path` under (a file, or a folder to create); when
    the block succeeds it replaces `path`, when it fails it is removed and `path` untouched."""
    partial = partial_path(path)
    remove(partial)  # left by a crashed earlier attempt
    try:
        yield partial
    except BaseException:
        with contextlib.suppress(OSError):
            remove(partial)
        raise
    commit(partial, path)
