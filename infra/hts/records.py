"""Where records begin in a BGZF stream: the block starts a stored-bytes-only ticket can cut at.

A record may straddle two BGZF blocks: bgzip cuts a VCF every 64 KiB wherever a line is, and even
htslib's writers, which start a new block before a record that would not fit, let a record longer
than a block straddle. A ticket of stored bytes only (``Query.exact`` False) cannot cut inside a
block, so each of its ranges must start and end at a block whose first byte begins a record.
Such blocks are found by walking records forward from a virtual offset known to begin one (every
offset an index holds does): BAM records say their length in 4 bytes, BCF records in 8, VCF
records end at a newline. The walk inflates only the blocks between the two points.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from genomebus.infra.hts.bgzf import read_blocks, split_virtual
from genomebus.infra.hts.model import MalformedFile, Plaintext


def record_length(fmt: str, data: bytes, position: int = 0) -> int | None:
    """The length of the record starting at ``position`` of ``data``, or None if ``data`` ends too soon to say."""
    if fmt == "BAM":
        return 4 + struct.unpack_from("<i", data, position)[0] if len(data) >= position + 4 else None
    if fmt == "BCF":
        return 8 + sum(struct.unpack_from("<II", data, position)) if len(data) >= position + 8 else None
    newline = data.find(b"\n", position)
    return newline + 1 - position if newline >= 0 else None


async def aligned_blocks(obj: Plaintext, fmt: str, voffset: int, stop: int) -> AsyncIterator[int]:
    """The offsets of the blocks from ``voffset``'s own up to ``stop`` that begin with a record.

    ``voffset`` must begin a record; its block is yielded when that record is the block's first byte.
    """
    coffset, uoffset = split_virtual(voffset)
    pending = b""  # the start of a record whose length is not known yet
    skip = 0  # bytes of a record of known length still to come
    async for start, _, data in read_blocks(obj, coffset):
        if start > stop:
            return
        if (start == coffset and uoffset == 0) or (start != coffset and not skip and not pending):
            yield start
        position = uoffset if start == coffset else 0
        taken = min(skip, len(data))
        skip, position = skip - taken, position + taken
        while position < len(data) and not skip:
            if pending:  # a record begun in an earlier block: read its length across the boundary
                data, position = pending + data[position:], 0
            length = record_length(fmt, data, position)
            if length is None:
                pending = data[position:]
                break
            if length <= 0:
                raise MalformedFile(f"a {fmt} record of length {length}")
            pending = b""
            if position + length > len(data):
                skip = position + length - len(data)
                break
            position += length
