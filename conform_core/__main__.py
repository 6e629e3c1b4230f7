"""``python -m conform_core`` runs the ``conform`` command line."""

from .cli import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    main()
