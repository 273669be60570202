"""`python -m cmap ...` does the same as the `cmap` command."""

from cmap.cli import main

if __name__ == "__main__":
    main()
