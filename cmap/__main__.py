"""`python -m cmap ...` is the `cmap` command."""

from cmap.main import main

main()
