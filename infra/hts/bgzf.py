"""BGZF, the blocked gzip of BAM, bgzipped VCF and BCF: block headers, virtual offsets, block (de)compression.

A BGZF file is a series of gzip members ("blocks") of at most 64 KiB each, whose gzip header carries
the block's compressed size (the ``BC`` extra subfield, BSIZE = size - 1), so a reader can jump from
block to block without inflating. Positions inside such a file are *virtual offsets*: the block's
byte offset in the file (``coffset``) shifted left 16 bits, plus the offset inside its inflated
data (``uoffset``). The file ends with an empty block, the 28-byte EOF marker.

Everything here is pure (bytes in, values out) except ``block_end``, which reads one block header
from a ``Plaintext`` because an index chunk says where its last record starts, never where the
block holding it ends.
"""

from __future__ import annotations

import struct
import zlib

from genomebus.infra.hts.model import MalformedFile, Plaintext

EOF_MARKER = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
"""The empty block every BGZF file ends with (SAM/BAM specification, section 4.1.2)."""

MAX_BLOCK_DATA = 65280
"""Inflated bytes per block that htslib writes, so that a block never outgrows 64 KiB compressed."""

_FIXED_HEADER = 12  # ID1 ID2 CM FLG MTIME(4) XFL OS XLEN(2)
_MAX_EXTRA = 65535


def split_virtual(voffset: int) -> tuple[int, int]:
    """``(coffset, uoffset)`` of a virtual offset."""
    return voffset >> 16, voffset & 0xFFFF


def is_bgzf(data: bytes) -> bool:
    """Whether ``data`` starts with a BGZF block header (gzip with the ``BC`` extra subfield)."""
    return header_size(data) is not None


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(block size, header length)`` of the BGZF block that ``data`` starts with, or None if it is not one.

    ``data`` must hold the gzip header with its extra field (18 bytes for every block htslib writes).
    """
    if len(data) < _FIXED_HEADER or data[:4] != b"\x1f\x8b\x08\x04":
        return None
    xlen = struct.unpack_from("<H", data, 10)[0]
    extra = data[_FIXED_HEADER:_FIXED_HEADER + xlen]
    if len(extra) < xlen:
        return None
    offset = 0
    while offset + 4 <= xlen:
        si1, si2, slen = extra[offset], extra[offset + 1], struct.unpack_from("<H", extra, offset + 2)[0]
        if si1 == 66 and si2 == 67 and slen == 2 and offset + 6 <= xlen:
            return struct.unpack_from("<H", extra, offset + 4)[0] + 1, _FIXED_HEADER + xlen
        offset += 4 + slen
    return None


async def block_end(obj: Plaintext, coffset: int) -> int:
    """The file offset just after the BGZF block that starts at ``coffset``."""
    head = await obj.read(coffset, coffset + 18)
    parsed = header_size(head)
    if parsed is None and len(head) >= _FIXED_HEADER and head[:4] == b"\x1f\x8b\x08\x04":
        xlen = struct.unpack_from("<H", head, 10)[0]  # an unusual extra field: read all of it
        parsed = header_size(await obj.read(coffset, coffset + _FIXED_HEADER + min(xlen, _MAX_EXTRA)))
    if parsed is None:
        raise MalformedFile(f"no BGZF block starts at byte {coffset}")
    return coffset + parsed[0]


def inflate_block(block: bytes) -> bytes:
    """The inflated data of one whole BGZF block (``block`` is exactly the block's bytes)."""
    parsed = header_size(block)
    if parsed is None or parsed[0] != len(block):
        raise MalformedFile("not a whole BGZF block")
    _, head = parsed
    isize = struct.unpack_from("<I", block, len(block) - 4)[0]
    try:
        data = zlib.decompress(block[head:len(block) - 8], wbits=-15)
    except zlib.error as exc:
        raise MalformedFile(f"a BGZF block does not inflate: {exc}") from None
    if len(data) != isize:
        raise MalformedFile("a BGZF block inflates to another size than it declares")
    return data


def deflate_blocks(data: bytes) -> bytes:
    """``data`` compressed as BGZF blocks (no EOF marker): what a reader inflates back to ``data``."""
    out = bytearray()
    for offset in range(0, len(data), MAX_BLOCK_DATA):
        piece = data[offset:offset + MAX_BLOCK_DATA]
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = compressor.compress(piece) + compressor.flush()
        size = _FIXED_HEADER + 6 + len(payload) + 8
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        out += struct.pack("<H", size - 1) + payload
        out += struct.pack("<II", zlib.crc32(piece), len(piece))
    return bytes(out)


async def read_blocks(obj: Plaintext, start: int = 0, read_ahead: int = 1 << 17):
    """Yield ``(coffset, block end, inflated data)`` for the blocks from ``start``, reading ``read_ahead`` at a time.

    The caller stops iterating when it has what it needs, so a file is read only as far as needed.
    """
    buffer, buffer_start = b"", start
    position = start
    while position < obj.size:
        if position + 18 > buffer_start + len(buffer):
            buffer = await obj.read(position, position + read_ahead)
            buffer_start = position
        local = position - buffer_start
        parsed = header_size(buffer[local:local + _FIXED_HEADER + _MAX_EXTRA])
        if parsed is None:
            raise MalformedFile(f"no BGZF block starts at byte {position}")
        size = parsed[0]
        if local + size > len(buffer):
            buffer = await obj.read(position, position + max(size, read_ahead))
            buffer_start, local = position, 0
            if len(buffer) < size:
                raise MalformedFile(f"the BGZF block at byte {position} is truncated")
        yield position, position + size, inflate_block(buffer[local:local + size])
        position += size
