"""genomebus: an event-driven national genomics node.

This package is the entry point (the ``genomebus`` command, the local stack's
status, the auditors' views, the demo). Beneath it, installed as its
subpackages, are the layers it wires together: ``genomebus.gateway``,
``genomebus.consumers`` and ``genomebus.producers`` over ``genomebus.infra``
over ``genomebus.schemas``. Imports only run downward (``tests/unit/test_layering.py``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genomebus")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
