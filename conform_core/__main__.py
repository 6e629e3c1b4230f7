"""``python -m conform_core`` runs the ``conform`` command line."""

from .cli import main

main()
