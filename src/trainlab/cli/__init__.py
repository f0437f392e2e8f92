"""The ``trainlab`` command line: thin commands over the library."""

from trainlab.cli.main import main

__all__ = ["main"]
