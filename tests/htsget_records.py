"""What an htsget client checks in a ticket's answer: the records of a region, compared with pysam on the original.

A ticket's bytes (``follow`` them with whatever fetches a URL) are written to a file and opened
with pysam; the records overlapping the region are compared, as a multiset, with what pysam's
``fetch`` finds in the original file, so a missing record and a record sent twice both fail. Extra
records outside the region are allowed (htsget lets a server answer more). CRAM is decoded without
its reference (only name, flag, position and CIGAR), and ``no_reference_download`` points htslib's
REF_PATH and REF_CACHE at nothing local, so nothing is ever downloaded.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pysam

READS = ("BAM", "CRAM")
CRAM_FIELDS = b"required_fields=0x2f"  # QNAME, FLAG, RNAME, POS, CIGAR: no bases, so no reference
SUFFIXES = {"BAM": ".bam", "CRAM": ".cram", "VCF": ".vcf.gz", "BCF": ".bcf"}


def no_reference_download(monkeypatch: Any, directory: Path) -> None:
    monkeypatch.setenv("REF_PATH", str(directory / "no-reference" / "%s"))
    monkeypatch.setenv("REF_CACHE", str(directory / "no-reference-cache" / "%s"))


async def concatenate(ticket: dict[str, Any], fetch: Callable[[str, dict[str, str]], Awaitable[bytes]]) -> bytes:
    """The ticket's blob: each URL's bytes in order, ``data:`` URIs decoded, the others fetched with their headers."""
    parts = []
    for url in ticket["htsget"]["urls"]:
        if url["url"].startswith("data:"):
            meta, _, payload = url["url"].partition(",")
            assert meta.endswith(";base64"), "htsget data URIs are base64"
            parts.append(base64.b64decode(payload))
        else:
            parts.append(await fetch(url["url"], url.get("headers", {})))
    return b"".join(parts)


def opened(fmt: str, path: Path) -> Any:
    if fmt in READS:
        return pysam.AlignmentFile(str(path), check_sq=False,
                                   format_options=[CRAM_FIELDS] if fmt == "CRAM" else None)
    return pysam.VariantFile(str(path))


def key(fmt: str, record: Any) -> tuple:
    if fmt in READS:
        return (record.query_name, record.flag, record.reference_id, record.reference_start, record.cigarstring)
    return (record.contig, record.pos, record.ref, record.alts)


def overlaps(fmt: str, record: Any, contig: str, start: int, end: int) -> bool:
    """htslib's test for a record in a region (a record of no length counts as one base; ``*``: unplaced)."""
    if fmt in READS:
        if contig == "*":
            return record.reference_id == -1
        if record.reference_name != contig:
            return False
        first = record.reference_start
        last = record.reference_end if record.reference_end and record.reference_end > first else first + 1
    else:
        if record.contig != contig:
            return False
        first, last = record.start, max(record.stop, record.start + 1)
    return first < end and last > start


def _records(fmt: str, f: Any) -> Any:
    return f.fetch(until_eof=True) if fmt in READS else f.fetch()


def expected(fmt: str, original: Path, contig: str, start: int | None, end: int | None) -> Counter:
    """The records pysam's ``fetch`` finds in the original (``*``: the unplaced unmapped reads)."""
    with opened(fmt, original) as f:
        if contig == "*":
            return Counter(key(fmt, r) for r in _records(fmt, f) if r.reference_id == -1)
        return Counter(key(fmt, r) for r in f.fetch(contig, start, end))


def found(fmt: str, copy: Path, contig: str, start: int | None, end: int | None) -> Counter:
    """The records of a ticket's file that lie in the region."""
    lo, hi = start or 0, end if end is not None else 1 << 40
    with opened(fmt, copy) as f:
        return Counter(key(fmt, r) for r in _records(fmt, f) if overlaps(fmt, r, contig, lo, hi))


def every_record(fmt: str, path: Path) -> Counter:
    with opened(fmt, path) as f:
        return Counter(key(fmt, r) for r in _records(fmt, f))


def header_text(fmt: str, path: Path) -> str:
    with opened(fmt, path) as f:
        return str(f.header)
