"""``python -m dangan`` is the ``dangan`` command."""

from dangan.cli import main

main()
