"""The values the htsget planner speaks in: what is asked (``Query``, ``Region``), what it answers (``Block``), how it refuses.

They mirror htsget 1.3 (https://samtools.github.io/hts-specs/htsget.html): coordinates are 0-based
and half-open, ``class=header`` is ``Query.header_only``, and a refusal carries the htsget error
name the gateway puts in its error document (``InvalidInput``, ``InvalidRange``, ``NotFound``,
``UnsupportedFormat``). A stored file or index that does not parse is not the client's fault: it is
``MalformedFile``, which the gateway answers as an internal error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

FORMATS: dict[str, tuple[str, ...]] = {"reads": ("BAM", "CRAM"), "variants": ("VCF", "BCF")}
"""The formats each htsget endpoint serves (the file's own format: this node does not transcode)."""

UNPLACED = "*"
"""htsget's reference name for unplaced unmapped reads (reads endpoint only)."""


class Plaintext(Protocol):
    """The decrypted stored file, read by byte range (``genomebus.infra.archive_store.ArchivedObject`` in the gateway)."""

    size: int

    async def read(self, start: int, end: int) -> bytes:
        """The plaintext bytes ``[start, end)``, clipped to ``size``."""


@dataclass(frozen=True)
class Region:
    """One genomic region, as htsget gives it: 0-based ``start`` inclusive, ``end`` exclusive, either open.

    A GET request's ``start`` equal to its ``end`` is a valid, empty region; a POST body's is not
    (htsget 1.3 asks for InvalidRange when ``start >= end`` in a region list). A ``Region`` does not
    know which it came from, so the planner refuses only ``start > end`` and the router refuses the
    POST case itself.
    """

    reference_name: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class Query:
    """What a ticket asks of one file.

    ``format`` is the stored file's own format; ``regions`` None is the whole file. ``exact=False``
    asks for byte ranges of the stored file only (a Crypt4GH ticket can carry no synthesised bytes):
    blocks are then sent whole, with whatever records they hold beyond those asked for (htsget
    allows it), and the header's last block goes with the header when records share it.
    """

    format: str
    header_only: bool = False
    regions: tuple[Region, ...] | None = None
    exact: bool = True


@dataclass(frozen=True)
class Block:
    """One URL of a ticket: the stored bytes ``[start, end)``, or ``data`` made from them when it is set.

    ``data`` is set for a BGZF block that had to be cut: the one the header shares with records, or
    the first or last block of a run of records, inflated, cut and re-compressed (``start``/``end``
    then name the stored block it was made from). Never when the query is not ``exact``.
    """

    start: int
    end: int
    klass: Literal["header", "body"]
    data: bytes | None = None


class HtsError(Exception):
    """A query htsget says to refuse; ``error`` is the htsget error name, ``message`` says why to the client."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message


class MalformedFile(ValueError):
    """The stored file or its index does not parse: the archive holds something it should not (a server fault)."""
