"""`python -m cmap.main fit|validate|test|predict --config ...`"""

from cmap.cli import main

if __name__ == "__main__":
    main()
