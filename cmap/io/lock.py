"""A lock file on an output, so two runs never write the same file at once."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from cmap.errors import DataError, OutputExistsError


class OutputLock:
    """`<path>` created exclusively, holding `host pid`. Held by a live process on this
    host: refused; left by a dead one (a kill): taken over, with a line saying so."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.held = False

    def acquire(self) -> None:
        owner = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileNotFoundError as err:
                raise DataError(self.path.parent, "folder not found") from err
            except (NotADirectoryError, PermissionError) as err:
                raise DataError(self.path, f"cannot be written ({err.strerror})") from err
            except FileExistsError:
                if not self._stale():
                    raise OutputExistsError(
                        f"{self.path}: another run ({self.path.read_text().strip()}) is writing "
                        "this output; wait for it, or remove the lock if that run is gone"
                    ) from None
                print(
                    f"cmap: {self.path}: taking over the lock of a run that is gone",
                    file=sys.stderr,
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner + "\n")
            self.held = True
            return

    def _stale(self) -> bool:
        """The lock's process is gone (same host; a lock of another host is never stale)."""
        try:
            host, pid = self.path.read_text().split()
            if host != socket.gethostname():
                return False
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):  # gone, or killed before writing the lock
            return True
        except FileNotFoundError:  # released meanwhile
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
