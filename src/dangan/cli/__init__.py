"""The ``dangan`` command line."""

from dangan.cli.main import app, main

__all__ = ["app", "main"]
