"""The indexes that say where a region's records are: BAI, CSI and TBI (binning indexes), and CRAI (CRAM).

A binning index (SAM/BAM specification section 5, CSIv1, tabix) cuts each reference into bins of a
hierarchy (``depth`` levels under one root bin, the finest ``2**min_shift`` bases wide; BAI and TBI
are ``min_shift`` 14, ``depth`` 5). Each bin lists the chunks (pairs of virtual offsets) holding the
records whose span falls in it; a region's records are in the chunks of the bins ``reg2bins``
names. Chunks that end before the first record that can overlap the region are dropped: that
offset comes from BAI/TBI's linear index (one offset per 16 kb window), or from CSI's per-bin
``loff``. A pseudo-bin after the last real bin holds the reference's first and last record offsets
and its mapped/unmapped counts; it is never a query bin.

TBI and a tabix CSI carry the reference names (their aux data); BAI, and the CSI of a BAM or BCF,
number references as the file's header does.

A CRAI is gzipped text, one line per slice: reference id (-1: unplaced reads), first position
(1-based), span, the container's file offset, the slice's offset in the container, its size.

Parsing is pure: the whole index is in memory (it is small next to its file).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass

from genomebus.infra.hts.model import MalformedFile


@dataclass(frozen=True)
class Chunk:
    begin: int
    """Virtual offset of the chunk's first record."""
    end: int
    """Virtual offset just after its last record."""


@dataclass(frozen=True)
class Bin:
    chunks: tuple[Chunk, ...]
    loff: int = 0
    """CSI only: virtual offset of the first record overlapping the bin."""


@dataclass(frozen=True)
class ReferenceIndex:
    bins: dict[int, Bin]
    linear: tuple[int, ...] = ()
    """BAI/TBI only: per 16 kb window, the virtual offset of the first record overlapping it."""
    span: Chunk | None = None
    """From the pseudo-bin: the virtual offsets of the reference's first record and just after its last."""


@dataclass(frozen=True)
class BinningIndex:
    kind: str  # BAI | CSI | TBI
    min_shift: int
    depth: int
    references: tuple[ReferenceIndex, ...]
    names: tuple[str, ...] | None = None
    """Reference names, when the index carries them (TBI, tabix CSI); else the header's order counts."""
    n_no_coor: int | None = None
    """Records without a position (unplaced unmapped reads), when the index says."""

    @property
    def max_position(self) -> int:
        """The first position the bins cannot address: queries are clipped to it."""
        return 1 << (self.min_shift + 3 * self.depth)

    @property
    def pseudo_bin(self) -> int:
        return ((1 << (3 * (self.depth + 1))) - 1) // 7 + 1

    def chunks_for(self, ref_id: int, start: int, end: int) -> list[Chunk]:
        """The chunks holding every record that overlaps ``[start, end)`` of reference ``ref_id``, unsorted."""
        if ref_id >= len(self.references):
            return []
        end = min(end, self.max_position)
        if start >= end:
            return []
        reference = self.references[ref_id]
        min_offset = self._min_offset(reference, start)
        found = []
        for number in reg2bins(start, end, self.min_shift, self.depth):
            bin_ = reference.bins.get(number)
            if bin_ is not None:
                found += [c for c in bin_.chunks if c.end > min_offset]
        return found

    def last_record_end(self) -> int | None:
        """The virtual offset just after the last placed record of any reference (where unplaced reads begin)."""
        ends = []
        for reference in self.references:
            if reference.span is not None:
                ends.append(reference.span.end)
            for number, bin_ in reference.bins.items():
                if number != self.pseudo_bin:
                    ends += [c.end for c in bin_.chunks]
        return max(ends, default=None)

    def _min_offset(self, reference: ReferenceIndex, start: int) -> int:
        if self.kind != "CSI":
            if not reference.linear:
                return 0
            return reference.linear[min(start >> 14, len(reference.linear) - 1)]
        number = bin_first(self.depth) + (start >> self.min_shift)
        while True:  # the finest bin over start that holds records, else its nearest ancestor that does
            bin_ = reference.bins.get(number)
            if bin_ is not None:
                return bin_.loff
            if number == 0:
                return 0
            number = (number - 1) >> 3


def bin_first(level: int) -> int:
    """The number of the first bin of ``level`` (0 is the root)."""
    return ((1 << (3 * level)) - 1) // 7


def reg2bins(start: int, end: int, min_shift: int, depth: int) -> list[int]:
    """The bins that may hold records overlapping ``[start, end)`` (CSIv1 specification, section 3)."""
    end -= 1
    bins: list[int] = []
    shift = min_shift + 3 * depth
    for level in range(depth + 1):
        first = bin_first(level)
        bins.extend(range(first + (start >> shift), first + (end >> shift) + 1))
        shift -= 3
    return bins


def parse_binning_index(data: bytes) -> BinningIndex:
    """A BAI, CSI or TBI from its bytes (CSI and TBI are BGZF-compressed; a plain-gzip one is accepted too)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedFile(f"the index does not inflate: {exc}") from None
    try:
        match data[:4]:
            case b"BAI\x01":
                return _parse_bai_like("BAI", _Reader(data, 4), names=None)
            case b"TBI\x01":
                reader = _Reader(data, 4)
                n_ref = reader.i32()
                reader.skip(24)  # format, col_seq, col_beg, col_end, meta, skip
                names = _names(reader.bytes(reader.i32()))
                if len(names) != n_ref:
                    raise MalformedFile("the TBI names another number of references than it indexes")
                return _parse_bai_like("TBI", reader, names=names, n_ref=n_ref)
            case b"CSI\x01":
                return _parse_csi(_Reader(data, 4))
    except struct.error:
        raise MalformedFile("the index is truncated") from None
    raise MalformedFile("the index is not a BAI, CSI or TBI")


def _parse_bai_like(kind: str, reader: _Reader, names: tuple[str, ...] | None, n_ref: int | None = None) -> BinningIndex:
    n_ref = reader.i32() if n_ref is None else n_ref
    pseudo = 37450
    references = []
    for _ in range(n_ref):
        bins, span = {}, None
        for _ in range(reader.i32()):
            number, n_chunk = reader.u32(), reader.i32()
            chunks = tuple(Chunk(*reader.pair()) for _ in range(n_chunk))
            if number == pseudo:
                span = chunks[0] if chunks else None
            else:
                bins[number] = Bin(chunks)
        linear = reader.u64s(reader.i32())
        references.append(ReferenceIndex(bins, linear, span))
    return BinningIndex(kind, 14, 5, tuple(references), names, reader.optional_u64())


def _parse_csi(reader: _Reader) -> BinningIndex:
    min_shift, depth, l_aux = reader.i32(), reader.i32(), reader.i32()
    aux = reader.bytes(l_aux)
    names = None
    if l_aux >= 28:  # tabix meta: format, col_seq, col_beg, col_end, meta, skip, l_nm, names
        l_nm = struct.unpack_from("<i", aux, 24)[0]
        names = _names(aux[28:28 + l_nm])
    pseudo = ((1 << (3 * (depth + 1))) - 1) // 7 + 1
    references = []
    for _ in range(reader.i32()):
        bins, span = {}, None
        for _ in range(reader.i32()):
            number, loff, n_chunk = reader.u32(), reader.u64(), reader.i32()
            chunks = tuple(Chunk(*reader.pair()) for _ in range(n_chunk))
            if number == pseudo:
                span = chunks[0] if chunks else None
            else:
                bins[number] = Bin(chunks, loff)
        references.append(ReferenceIndex(bins, (), span))
    if names is not None and len(names) != len(references):
        names = None  # aux data that is not tabix meta after all: fall back on the header's order
    return BinningIndex("CSI", min_shift, depth, tuple(references), names, reader.optional_u64())


def _names(blob: bytes) -> tuple[str, ...]:
    return tuple(name.decode() for name in blob.split(b"\0")[:-1]) if blob else ()


@dataclass
class _Reader:
    data: bytes
    offset: int = 0

    def _take(self, fmt: str) -> int:
        value = struct.unpack_from(fmt, self.data, self.offset)[0]
        self.offset += struct.calcsize(fmt)
        return value

    def i32(self) -> int:
        value = self._take("<i")
        if value < 0:
            raise MalformedFile("the index has a negative count")
        return value

    def u32(self) -> int:
        return self._take("<I")

    def u64(self) -> int:
        return self._take("<Q")

    def pair(self) -> tuple[int, int]:
        value = struct.unpack_from("<QQ", self.data, self.offset)
        self.offset += 16
        return value

    def u64s(self, count: int) -> tuple[int, ...]:
        values = struct.unpack_from(f"<{count}Q", self.data, self.offset)
        self.offset += 8 * count
        return values

    def bytes(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise struct.error("short")
        value = self.data[self.offset:self.offset + count]
        self.offset += count
        return value

    def skip(self, count: int) -> None:
        self.bytes(count)

    def optional_u64(self) -> int | None:
        return self.u64() if self.offset + 8 <= len(self.data) else None


@dataclass(frozen=True)
class CraiEntry:
    ref_id: int
    """-1: unplaced unmapped reads."""
    start: int
    """1-based first position."""
    span: int
    container: int
    """File offset of the slice's container."""


def parse_crai(data: bytes) -> tuple[CraiEntry, ...]:
    """The slices a CRAI lists (the index is gzipped text; a plain one is accepted too)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedFile(f"the CRAI does not inflate: {exc}") from None
    entries = []
    for number, line in enumerate(data.decode("ascii", "replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            ref_id, start, span, container = (int(f) for f in fields[:4])
        except ValueError:
            raise MalformedFile(f"line {number} of the CRAI is not six numbers") from None
        if len(fields) != 6:
            raise MalformedFile(f"line {number} of the CRAI is not six numbers")
        entries.append(CraiEntry(ref_id, start, span, container))
    return tuple(entries)
