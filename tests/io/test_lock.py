"""Output locks: one writer at a time; locks of dead runs are taken over."""

from __future__ import annotations

import os
import socket

import pytest

from cmap.errors import OutputExistsError
from cmap.io.lock import OutputLock


def test_a_live_lock_refuses_and_a_dead_ones_is_taken_over(tmp_path, capsys):
    path = tmp_path / "map.tif.lock"
    first = OutputLock(path)
    first.acquire()
    assert path.read_text().split() == [socket.gethostname(), str(os.getpid())]
    with pytest.raises(OutputExistsError, match="another run .* is writing this output"):
        OutputLock(path).acquire()
    first.release()
    assert not path.exists()
    path.write_text(f"{socket.gethostname()} 999999999\n")  # a killed run's
    taken = OutputLock(path)
    taken.acquire()
    assert "taking over the lock of a run that is gone" in capsys.readouterr().err
    assert path.read_text().split()[1] == str(os.getpid())
    taken.release()
    path.write_text("")  # killed between creating and writing the lock
    OutputLock(path).acquire()
    path.write_text("another-host 1\n")  # cannot be checked from here: never taken
    with pytest.raises(OutputExistsError, match="another-host 1"):
        OutputLock(path).acquire()
