"""`python -m cmap ...` is the `cmap` command."""

from cmap.main import main

if __name__ == "__main__":  # not when a spawned process imports this module
    main()
