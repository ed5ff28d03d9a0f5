"""``python -m genomebus`` is the ``genomebus`` command."""

from genomebus.cli import main

main()
