"""Where a file's header ends, and the reference names and lengths it declares (BAM, VCF, BCF, CRAM).

A region query names a reference; the index numbers references as the header orders them (BAM,
BCF, CRAM) or names them itself (TBI), so the header gives both the order and the lengths. A ticket
also sends the header first, so the planner needs to know the bytes it spans:

- BAM: magic, ``l_text``, text, ``n_ref``, then each reference's name and length (SAM/BAM spec 4.2).
- VCF: the lines up to and including ``#CHROM``; references from the ``##contig`` lines.
- BCF: magic ``BCF\\2\\x02``, ``l_text``, the VCF header text; the contig dictionary is the order of
  the ``##contig`` lines (or their ``IDX``).
- CRAM: the 26-byte file definition and the first container, whose first block is the SAM header.

BAM, VCF and BCF are BGZF: the header is inflated block by block only as far as it goes. Its last
block may hold the first records too (bgzip does this, htslib's BAM writer does not); that block is
kept, inflated, as ``SharedBlock`` so the planner can split it.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from genomebus.infra.hts.bgzf import is_bgzf, read_blocks
from genomebus.infra.hts.model import HtsError, MalformedFile, Plaintext


@dataclass(frozen=True)
class Contig:
    name: str
    length: int | None
    """None when the header does not say (a VCF without ``##contig`` lengths)."""


@dataclass(frozen=True)
class SharedBlock:
    """The BGZF block ``[start, end)`` where the header ends and the records begin, inflated and cut in two."""

    start: int
    end: int
    header_part: bytes
    records_part: bytes


@dataclass(frozen=True)
class FileHeader:
    contigs: tuple[Contig, ...]
    end: int
    """File offset where the header's whole blocks (CRAM: its container) end."""
    shared: SharedBlock | None = None

    @property
    def first_record(self) -> int:
        """The virtual offset of the first record (CRAM: the file offset of the first data container, shifted as one)."""
        return (self.shared.start << 16) | len(self.shared.header_part) if self.shared else self.end << 16


async def read_header(obj: Plaintext, fmt: str) -> FileHeader:
    """The header of a stored BAM, VCF, BCF or CRAM file, reading only as far as the header goes."""
    if fmt == "CRAM":
        return await _read_cram_header(obj)
    parse = {"BAM": parse_bam_header, "VCF": parse_vcf_header, "BCF": parse_bcf_header}[fmt]
    if not is_bgzf(await obj.read(0, 18)):
        raise HtsError("UnsupportedFormat", f"the stored {fmt} file is not BGZF-compressed; only BGZF files are served by region")
    inflated = bytearray()
    blocks: list[tuple[int, int, int]] = []  # (coffset, block end, inflated offset of the block's start)
    async for coffset, end, data in read_blocks(obj):
        blocks.append((coffset, end, len(inflated)))
        inflated += data
        parsed = parse(bytes(inflated))
        if parsed is None:
            continue
        contigs, length = parsed
        return _layout(contigs, length, blocks, bytes(inflated))
    raise MalformedFile(f"the file ends inside its {fmt} header")


def _layout(contigs: tuple[Contig, ...], length: int, blocks: list[tuple[int, int, int]], inflated: bytes) -> FileHeader:
    """Locate the inflated offset ``length`` (the header's end) among the blocks read."""
    bounds = [first for _, _, first in blocks[1:]] + [len(inflated)]
    for (coffset, end, first), after in zip(blocks, bounds, strict=True):
        if first == length and after > first:
            return FileHeader(contigs, coffset)
        if first < length < after:
            block = inflated[first:after]
            cut = length - first
            return FileHeader(contigs, coffset, SharedBlock(coffset, end, block[:cut], block[cut:]))
    return FileHeader(contigs, blocks[-1][1])


def parse_bam_header(data: bytes) -> tuple[tuple[Contig, ...], int] | None:
    """The references and the inflated length of a BAM header, or None if ``data`` stops inside it."""
    if len(data) < 4:
        return None
    if data[:4] != b"BAM\x01":
        raise MalformedFile("the stored BAM file does not start with the BAM magic")
    if len(data) < 8:
        return None
    l_text = struct.unpack_from("<i", data, 4)[0]
    offset = 8 + l_text
    if len(data) < offset + 4:
        return None
    n_ref = struct.unpack_from("<i", data, offset)[0]
    offset += 4
    contigs = []
    for _ in range(n_ref):
        if len(data) < offset + 4:
            return None
        l_name = struct.unpack_from("<i", data, offset)[0]
        if len(data) < offset + 8 + l_name:
            return None
        name = data[offset + 4:offset + 4 + l_name].rstrip(b"\0").decode()
        contigs.append(Contig(name, struct.unpack_from("<i", data, offset + 4 + l_name)[0]))
        offset += 8 + l_name
    return tuple(contigs), offset


def parse_vcf_header(data: bytes) -> tuple[tuple[Contig, ...], int] | None:
    """The contigs and the length of a VCF header (through the ``#CHROM`` line), or None if ``data`` stops inside it."""
    if len(data) >= 2 and not data.startswith(b"##") and not data.startswith(b"#CHROM"):
        raise MalformedFile("the stored VCF file does not start with a VCF header")
    chrom = 0 if data.startswith(b"#CHROM") else data.find(b"\n#CHROM") + 1
    if chrom == 0 and not data.startswith(b"#CHROM"):
        return None
    newline = data.find(b"\n", chrom)
    if newline < 0:
        return None
    return contigs_of(data[:chrom].decode("utf-8", "replace")), newline + 1


def parse_bcf_header(data: bytes) -> tuple[tuple[Contig, ...], int] | None:
    """The contig dictionary and the length of a BCF header, or None if ``data`` stops inside it."""
    if len(data) < 5:
        return None
    if data[:4] != b"BCF\x02":
        raise MalformedFile("the stored BCF file does not start with the BCF 2 magic")
    if len(data) < 9:
        return None
    end = 9 + struct.unpack_from("<I", data, 5)[0]
    if len(data) < end:
        return None
    return contigs_of(data[9:end].rstrip(b"\0").decode("utf-8", "replace")), end


_CONTIG = re.compile(r"^##contig=<(.*)>\s*$", re.MULTILINE)
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,]*)')


def contigs_of(text: str) -> tuple[Contig, ...]:
    """The ``##contig`` lines of a VCF header, in dictionary order (an ``IDX`` places a contig explicitly)."""
    placed: dict[int, Contig] = {}
    for number, match in enumerate(_CONTIG.finditer(text)):
        fields = dict(_FIELD.findall(match.group(1)))
        if "ID" not in fields:
            continue
        length = fields.get("length", "")
        idx = fields.get("IDX", "")
        placed[int(idx) if idx.isdigit() else number] = Contig(fields["ID"], int(length) if length.isdigit() else None)
    return tuple(placed[i] for i in sorted(placed))


# -- CRAM ---------------------------------------------------------------------------------------------------------

CRAM3_EOF = bytes.fromhex("0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b")
"""The end-of-file container of CRAM 3.x (CRAM specification, section 9)."""

_CRAM_DEFINITION = 26
_CRAM_PROBE = 1 << 16


async def _read_cram_header(obj: Plaintext) -> FileHeader:
    head = await obj.read(0, _CRAM_PROBE)
    if head[:4] != b"CRAM":
        raise MalformedFile("the stored CRAM file does not start with the CRAM magic")
    if head[4] != 3:
        raise HtsError("UnsupportedFormat", f"CRAM {head[4]}.{head[5]} is not served by region; only CRAM 3")
    try:
        length, body = container_extent(head, _CRAM_DEFINITION)
        end = body + length
        if len(head) < end:
            head = await obj.read(0, end)
        text = _sam_header_text(head[body:end])
    except (IndexError, struct.error):
        raise MalformedFile("the CRAM header container is truncated") from None
    return FileHeader(contigs_of_sam(text), end)


def container_extent(data: bytes, offset: int) -> tuple[int, int]:
    """``(length, body offset)`` of the CRAM 3 container whose header starts at ``offset`` of ``data``."""
    length = struct.unpack_from("<i", data, offset)[0]
    position = offset + 4
    for _ in range(4):  # reference id, start, span, record count
        _, position = itf8(data, position)
    for _ in range(2):  # record counter, bases
        _, position = ltf8(data, position)
    _, position = itf8(data, position)  # block count
    landmarks, position = itf8(data, position)
    for _ in range(landmarks):
        _, position = itf8(data, position)
    return length, position + 4  # CRC32


def _sam_header_text(container: bytes) -> str:
    method, _content_type = container[0], container[1]
    position = 2
    _, position = itf8(container, position)  # content id
    size, position = itf8(container, position)
    _, position = itf8(container, position)  # raw size
    payload = container[position:position + size]
    if method == 1:
        payload = zlib.decompress(payload, wbits=31)
    elif method != 0:
        raise MalformedFile("the CRAM header block is compressed with a method other than gzip")
    l_text = struct.unpack_from("<i", payload, 0)[0]
    return payload[4:4 + l_text].decode("utf-8", "replace")


def contigs_of_sam(text: str) -> tuple[Contig, ...]:
    """The ``@SQ`` lines of a SAM header text, in order."""
    contigs = []
    for line in text.splitlines():
        if line.startswith("@SQ\t"):
            tags = dict(field.split(":", 1) for field in line.split("\t")[1:] if ":" in field)
            length = tags.get("LN", "")
            contigs.append(Contig(tags.get("SN", ""), int(length) if length.isdigit() else None))
    return tuple(contigs)


def itf8(data: bytes, position: int) -> tuple[int, int]:
    """A CRAM ITF8 integer (signed 32 bits) at ``position``, and the position after it."""
    first = data[position]
    count = 0
    while count < 4 and first & (0x80 >> count):
        count += 1
    if count < 4:
        value = first & (0xFF >> (count + 1))
        for byte in data[position + 1:position + 1 + count]:
            value = (value << 8) | byte
    else:
        value = first & 0x0F
        for byte in data[position + 1:position + 4]:
            value = (value << 8) | byte
        value = (value << 4) | (data[position + 4] & 0x0F)
    if value >= 1 << 31:
        value -= 1 << 32
    return value, position + 1 + count


def ltf8(data: bytes, position: int) -> tuple[int, int]:
    """A CRAM LTF8 integer (64 bits) at ``position``, and the position after it."""
    first = data[position]
    count = 0
    while count < 8 and first & (0x80 >> count):
        count += 1
    value = first & (0xFF >> (count + 1)) if count < 8 else 0
    for byte in data[position + 1:position + 1 + count]:
        value = (value << 8) | byte
    return value, position + 1 + count
