"""`python -m app.cli`: the same command line as the `mnist-service` console script."""

from app.cli import main

if __name__ == "__main__":
    main()
