"""``genomebus discover``: Beacon v2 queries from the command line (being built for issue 10)."""

from __future__ import annotations
