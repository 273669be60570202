"""The `cmap` command (also `python -m cmap` and `python -m cmap.main`): Lightning's
fit/validate/test/predict through `CMapCLI`, and the commands of `cmap.commands`."""

from __future__ import annotations

import sys

from jsonargparse import CLI

from cmap.cli import CMapCLI
from cmap.commands import COMMANDS
from cmap.errors import exits_on_user_error


@exits_on_user_error
def main(args: list[str] | None = None) -> None:
    """Run `cmap ARGS` (default: the process's own arguments)."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] and argv[0] in COMMANDS:
        name = argv[0]
        CLI(COMMANDS[name], args=argv[1:], prog=f"cmap {name}", as_positional=True)
        return
    if not argv or argv[0] in ("-h", "--help"):
        names = ", ".join(COMMANDS)
        print(f"cmap: besides fit, validate, test and predict: {names} (cmap COMMAND --help)")
    CMapCLI(subclass_mode_model=True, subclass_mode_data=True, args=args)


if __name__ == "__main__":
    main()
