"""From an htsget query to the byte ranges of one stored file: header, the records' blocks, the EOF marker.

``open_file`` reads a file's header and parses its index once (``HtsFile``, which the gateway may
keep per object); ``HtsFile.plan(query)`` answers each query. Concatenated in order, the blocks
are a file of the same format that htslib reads: the header, then the records that overlap the
regions, each byte at most once, then the file's own EOF marker.

The index gives the records as spans of virtual offsets, which begin and end inside BGZF blocks
(and a record may straddle two blocks). An ``exact`` query gets exactly those records: the blocks
in between as stored, and a span's first and last block inflated, cut at the span's edges and
re-compressed (``Block.data``). A stored-bytes-only query gets whole stored blocks, each range
widened to blocks that begin with a record (``records.py``), so it carries some records beyond
the regions, which htsget allows (clients filter). CRAM records never straddle containers: its
ranges are whole containers either way.

Decisions where htsget 1.3 leaves room, so the router and its tests can rely on them:

- An unknown reference name is ``NotFound`` (htsget: "SHOULD reply with a NotFound error if the
  requested reference does not exist"). A reference the header declares but the index has no
  records for is not unknown: its answer is a valid empty file (header and EOF), as htsget says of
  "successful requests with empty result sets" and as htsget-rs settled (umccr/htsget-rs#201).
- A ``start`` at or past the end of its reference is not an error either: an empty file. Only
  ``start > end`` is ``InvalidRange``; ``start``/``end`` without a reference name or with ``*``,
  ``*`` for variants, an empty region list and ``class=header`` with regions are ``InvalidInput``.
- A region query on a file without an index is ``NotFound``: the index, without which the node
  cannot find a region's records, is missing (htsget-rs answers a missing index the same way).
  Answering the whole file instead would hand out more than was asked for, silently. The whole
  file and its header need no index.
- ``class=header`` ends with the EOF marker too (htslib warns on a BAM without one), marked
  ``header`` like the rest of that ticket.
- A file whose last bytes are not its EOF marker gets a synthesised marker when the query is
  ``exact``, and none otherwise (readers then warn, but read).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from genomebus.infra.hts.bgzf import EOF_MARKER, block_end, deflate_blocks, inflate_block, split_virtual
from genomebus.infra.hts.headers import CRAM3_EOF, FileHeader, read_header
from genomebus.infra.hts.indexes import BinningIndex, CraiEntry, parse_binning_index, parse_crai
from genomebus.infra.hts.model import FORMATS, UNPLACED, Block, HtsError, Plaintext, Query, Region
from genomebus.infra.hts.records import aligned_blocks

ALL_FORMATS = tuple(f for formats in FORMATS.values() for f in formats)


async def open_file(obj: Plaintext, index: bytes | None, format: str) -> HtsFile:
    """Read the header of ``obj`` and parse ``index`` (its decrypted index file, or None): ready to plan queries."""
    if format not in ALL_FORMATS:
        raise HtsError("UnsupportedFormat", f"{format!r} is not one of {', '.join(ALL_FORMATS)}")
    header = await read_header(obj, format)
    parsed: BinningIndex | tuple[CraiEntry, ...] | None = None
    if index is not None:
        parsed = parse_crai(index) if format == "CRAM" else parse_binning_index(index)
    marker = CRAM3_EOF if format == "CRAM" else EOF_MARKER
    has_eof = obj.size >= header.end + len(marker) and await obj.read(obj.size - len(marker), obj.size) == marker
    return HtsFile(obj, format, header, parsed, obj.size - len(marker) if has_eof else obj.size)


async def plan(obj: Plaintext, index: bytes | None, query: Query) -> list[Block]:
    """The blocks that answer ``query`` on ``obj`` (see ``HtsFile.plan``); parses the header and index each call."""
    check(query)
    return await (await open_file(obj, index, query.format)).plan(query)


def check(query: Query) -> None:
    """Refuse, with htsget's error names, what no file could answer."""
    if query.format not in ALL_FORMATS:
        raise HtsError("UnsupportedFormat", f"{query.format!r} is not one of {', '.join(ALL_FORMATS)}")
    if query.header_only and query.regions is not None:
        raise HtsError("InvalidInput", "class=header takes no region: ask for the header alone")
    if query.regions is not None and not query.regions:
        raise HtsError("InvalidInput", "the region list is empty: leave it out to ask for the whole file")
    for region in query.regions or ():
        check_region(region, reads=query.format in FORMATS["reads"])


def check_region(region: Region, reads: bool) -> None:
    """htsget's rules for one region, before any file is read."""
    positioned = region.start is not None or region.end is not None
    if not region.reference_name:
        if positioned:
            raise HtsError("InvalidInput", "start and end need a referenceName")
        raise HtsError("InvalidInput", "a region needs a referenceName")
    if region.reference_name == UNPLACED:
        if not reads:
            raise HtsError("InvalidInput", "referenceName '*' (unplaced unmapped reads) is for reads only")
        if positioned:
            raise HtsError("InvalidInput", "referenceName '*' (unplaced unmapped reads) takes no start or end")
    for name, value in (("start", region.start), ("end", region.end)):
        if value is not None and value < 0:
            raise HtsError("InvalidInput", f"{name} must not be negative")
    if region.start is not None and region.end is not None and region.start > region.end:
        raise HtsError("InvalidRange", f"start {region.start} is greater than end {region.end}")


@dataclass
class HtsFile:
    """One stored file with its header read and its index parsed: plans any number of queries."""

    obj: Plaintext
    format: str
    header: FileHeader
    index: BinningIndex | tuple[CraiEntry, ...] | None
    data_end: int
    """Where the records end: the start of the EOF marker, or the file's size if it has none."""
    _starts: list[int] | None = field(default=None, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The reference names a region may ask for: the header's, and the index's own (TBI) beside them."""
        own = tuple(c.name for c in self.header.contigs)
        extra = self.index.names if isinstance(self.index, BinningIndex) and self.index.names else ()
        return own + tuple(n for n in extra if n not in own)

    async def plan(self, query: Query) -> list[Block]:
        """The blocks whose bytes, concatenated, are ``query``'s answer (``plan`` in the module docstring)."""
        check(query)
        if query.format != self.format:
            raise HtsError("UnsupportedFormat", f"the file is {self.format}, not {query.format}")
        spans: list[tuple[int, int]] = []  # virtual offsets [begin, end) of the records asked for
        if query.regions is None and not query.header_only:
            spans = [(self.header.first_record, self.data_end << 16)]
        for region in query.regions or ():
            spans += self._spans(region)
        spans = merge([(max(b, self.header.first_record), min(e, self.data_end << 16)) for b, e in spans])
        if query.exact or self.format == "CRAM":
            blocks = self._header_blocks() + await self._exact_blocks(spans)
        else:
            blocks = await self._stored_blocks(spans)
        return join(blocks + self._eof_blocks(query))

    def _spans(self, region: Region) -> list[tuple[int, int]]:
        if region.reference_name != UNPLACED and region.reference_name not in self.names:
            raise HtsError("NotFound", f"the file has no reference named {region.reference_name!r}")
        if self.index is None:
            raise HtsError("NotFound", f"the {self.format} file has no index, so regions cannot be found in it: "
                                       "ask for the whole file or its header")
        if isinstance(self.index, tuple):
            return [(b << 16, e << 16) for b, e in self._cram_ranges(self.index, region)]
        if region.reference_name == UNPLACED:
            return [self._unplaced_span(self.index)]
        ref_id, length = self._reference(region.reference_name)
        start = region.start or 0
        if ref_id is None or (length is not None and start >= length):
            return []
        end = self.index.max_position if region.end is None else region.end
        return [(c.begin, c.end) for c in self.index.chunks_for(ref_id, start, end)]

    def _reference(self, name: str) -> tuple[int | None, int | None]:
        """The index's number for ``name`` (None: the index has none) and the header's length for it."""
        lengths = {c.name: c.length for c in self.header.contigs}
        assert isinstance(self.index, BinningIndex)
        order = self.index.names if self.index.names is not None else tuple(c.name for c in self.header.contigs)
        return (order.index(name) if name in order else None), lengths.get(name)

    def _unplaced_span(self, index: BinningIndex) -> tuple[int, int]:
        """Unplaced reads follow every placed record of a sorted file: from where the last placed one ends."""
        if index.n_no_coor == 0:
            return (0, 0)
        last = index.last_record_end()
        return (self.header.first_record if last is None else last, self.data_end << 16)

    def _cram_ranges(self, entries: tuple[CraiEntry, ...], region: Region) -> list[tuple[int, int]]:
        """The containers holding slices that overlap the region (CRAM records never straddle containers)."""
        containers = sorted({e.container for e in entries} | {self.data_end})
        if region.reference_name == UNPLACED:
            ref_id, length = -1, None
        else:
            ref_id = [c.name for c in self.header.contigs].index(region.reference_name)
            length = self.header.contigs[ref_id].length
        start = region.start or 0
        if length is not None and start >= length:
            return []
        found = []
        for entry in entries:
            last = entry.start + max(entry.span, 1) - 1  # 1-based, inclusive
            if entry.ref_id == ref_id and (ref_id == -1 or (last > start and (region.end is None or entry.start <= region.end))):
                found.append((entry.container, containers[bisect.bisect_right(containers, entry.container)]))
        return found

    def _header_blocks(self) -> list[Block]:
        """The header's whole blocks, and its part of the block it shares with records, re-compressed."""
        shared = self.header.shared
        blocks = [Block(0, self.header.end, "header")] if self.header.end else []
        if shared is not None:
            blocks.append(Block(shared.start, shared.end, "header", deflate_blocks(shared.header_part)))
        return blocks

    async def _exact_blocks(self, spans: list[tuple[int, int]]) -> list[Block]:
        """Exactly the records of each span: stored whole blocks, and its first and last block re-compressed when cut."""
        blocks = []
        for begin, end in spans:
            (first, skip), (last, keep) = split_virtual(begin), split_virtual(end)
            if first == last:
                start, stop, data = await self._inflated(first)
                blocks.append(Block(start, stop, "body", deflate_blocks(data[skip:keep])))
                continue
            if skip:
                start, first, data = await self._inflated(first)
                blocks.append(Block(start, first, "body", deflate_blocks(data[skip:])))
            if first < last:
                blocks.append(Block(first, last, "body"))
            if keep:
                start, stop, data = await self._inflated(last)
                blocks.append(Block(start, stop, "body", deflate_blocks(data[:keep])))
        return blocks

    async def _inflated(self, coffset: int) -> tuple[int, int, bytes]:
        end = await block_end(self.obj, coffset)
        return coffset, end, inflate_block(await self.obj.read(coffset, end))

    async def _stored_blocks(self, spans: list[tuple[int, int]]) -> list[Block]:
        """Whole stored blocks only: each range widened to blocks that begin with a record.

        The header's last block goes whole with the header, and the blocks after it up to the first
        that begins with a record (normally none), so no body range ever starts inside a record.
        """
        floor = self.header.end
        if self.header.shared is not None:
            floor = await self._aligned_after(self.header.first_record)
        ranges = []
        for begin, end in spans:
            (first, skip), (last, keep) = split_virtual(begin), split_virtual(end)
            start = first if not skip else await self._aligned_before(first)
            stop = last if not keep else await self._aligned_after(end)
            ranges.append((max(start, floor), stop))
        header = [Block(0, floor, "header")] if floor else []
        return header + [Block(start, stop, "body") for start, stop in merge(ranges)]

    async def _aligned_after(self, voffset: int) -> int:
        """The first block after ``voffset``'s (which begins a record) that begins with a record, or the data's end."""
        async for start in aligned_blocks(self.obj, self.format, voffset, self.data_end):
            if start > split_virtual(voffset)[0]:
                return start
        return self.data_end

    async def _aligned_before(self, coffset: int) -> int:
        """The last block at or before ``coffset`` that begins with a record, found walking from offsets the index knows."""
        known = self._record_starts()
        below = bisect.bisect_left(known, coffset << 16)
        for voffset in reversed(known[:below]):
            found = [s async for s in aligned_blocks(self.obj, self.format, voffset, coffset)]
            if found:
                return found[-1]
        return self.header.end

    def _record_starts(self) -> list[int]:
        """Virtual offsets the index holds: each begins a record (or is the end of the data)."""
        if self._starts is None:
            starts = {self.header.first_record}
            if isinstance(self.index, BinningIndex):
                for reference in self.index.references:
                    starts.update(o for o in reference.linear if o)
                    for bin_ in reference.bins.values():
                        starts.update(o for c in bin_.chunks for o in (c.begin, c.end))
                        if bin_.loff:
                            starts.add(bin_.loff)
            self._starts = sorted(s for s in starts if s < self.data_end << 16)
        return self._starts

    def _eof_blocks(self, query: Query) -> list[Block]:
        klass = "header" if query.header_only else "body"
        if self.data_end < self.obj.size:
            return [Block(self.data_end, self.obj.size, klass)]
        if query.exact:
            return [Block(self.obj.size, self.obj.size, klass, CRAM3_EOF if self.format == "CRAM" else EOF_MARKER)]
        return []


def merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Byte ranges sorted, with overlapping and touching ones made one: no byte twice."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def join(blocks: list[Block]) -> list[Block]:
    """Touching stored ranges of the same class as one block (fewer URLs; the bytes are the same)."""
    joined: list[Block] = []
    for block in blocks:
        last = joined[-1] if joined else None
        if (last is not None and last.data is None and block.data is None
                and last.klass == block.klass and last.end == block.start):
            joined[-1] = Block(last.start, block.end, last.klass)
        else:
            joined.append(block)
    return joined

