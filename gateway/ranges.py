"""HTTP Range requests (RFC 9110 §14) over an object of known size, and ``multipart/byteranges`` framing.

``parse(header, size)`` decides what a ``Range`` header asks of an object of ``size`` bytes:

- ``None``: serve the whole object (200). That is the answer to no header, to another unit than
  ``bytes``, to a syntactically invalid header (a recipient ignores it, §14.2: ``bytes=5-1``,
  ``bytes=abc``, ``bytes=``, ``items=0-1``) and to a header of more than ``MAX_RANGE_SPECS``
  ranges (a server MAY ignore those, §14.2, and this one does rather than parse a denial of
  service);
- a non-empty list of ``ByteRange`` (206): the satisfiable ranges, clipped to the object
  (``bytes=0-`` and ``bytes=0-99999999999999999999`` are the whole object, ``bytes=-n`` the last
  ``n`` bytes), sorted, with overlapping and adjacent ranges coalesced (§15.3.7.2 allows it
  whatever order they were asked in). One range left is a single-part 206; several are a
  ``multipart/byteranges`` body (``multipart_frames``);
- ``RangeNotSatisfiable`` (416, ``Content-Range: bytes */size``) when no range is satisfiable:
  every first byte at or past the end, or only ``bytes=-0``.

A zero-length object has no byte to send, so a satisfiable header (a non-zero suffix) is answered
with the whole (empty) object.

Numbers longer than 18 digits are larger than any object and are read as such, not parsed (Python
refuses to convert integer strings above 4,300 digits, and they would mean the same anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RANGE_SPECS = 100
_HUGE = 10**19  # beyond every object's size; stands for any number of more than 18 digits
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


class RangeNotSatisfiable(Exception):  # noqa: N818 - the name is the HTTP status's
    """No range of the header overlaps the object: answer 416 with ``Content-Range: bytes */<size>``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no range of the Range header is within the object's {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@dataclass(frozen=True)
class ByteRange:
    """The bytes ``[start, end)`` of an object (``end`` exclusive, unlike the header's last-pos)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def parse(header: str | None, size: int) -> list[ByteRange] | None:
    """The ranges of ``header`` to serve from ``size`` bytes; None for the whole object; raises ``RangeNotSatisfiable``."""
    if header is None:
        return None
    unit, eq, range_set = header.strip().partition("=")
    if not eq or unit.lower() != "bytes":
        return None
    specs = [s.strip() for s in range_set.split(",")]
    specs = [s for s in specs if s]  # RFC 9110 §5.6.1: empty list elements are allowed and ignored
    if not specs or len(specs) > MAX_RANGE_SPECS:
        return None
    wanted: list[ByteRange] = []
    satisfiable_in_empty = False
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None or match.group(0) == "-":
            return None
        first, last = match.groups()
        if first:
            start = _number(first)
            if last and _number(last) < start:
                return None  # invalid range-spec: the whole header is ignored
            if start < size:
                wanted.append(ByteRange(start, min(size, _number(last) + 1) if last else size))
        else:
            suffix = _number(last)
            if suffix > 0:
                satisfiable_in_empty = True
                if size > 0:
                    wanted.append(ByteRange(max(0, size - suffix), size))
    if size == 0 and satisfiable_in_empty:
        return None
    if not wanted:
        raise RangeNotSatisfiable(size)
    return coalesce(wanted)


def coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """``ranges`` sorted, with those that overlap or touch merged into one."""
    merged: list[ByteRange] = []
    for r in sorted(ranges, key=lambda r: (r.start, r.end)):
        if merged and r.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = ByteRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return merged


def describe(ranges: list[ByteRange]) -> str:
    """The ranges as a normalised ``Range`` value (``bytes=0-99,200-299``), as the audit records them."""
    return "bytes=" + ",".join(f"{r.start}-{r.end - 1}" for r in ranges)


@dataclass(frozen=True)
class MultipartFrames:
    """The framing of a ``multipart/byteranges`` body (RFC 9110 §14.6): each part's head, and the close."""

    content_type: str
    heads: tuple[bytes, ...]
    closing: bytes
    content_length: int


def multipart_frames(ranges: list[ByteRange], size: int, part_type: str, boundary: str) -> MultipartFrames:
    """The heads of the parts for ``ranges`` of a ``part_type`` object of ``size`` bytes, and the body's length.

    The body is ``heads[i]`` followed by the bytes of ``ranges[i]`` for each part, then ``closing``:
    ``--B CRLF Content-Type CRLF Content-Range CRLF CRLF <bytes>`` with ``CRLF --B`` between parts
    and ``CRLF --B-- CRLF`` at the end (RFC 2046 §5.1.1, no preamble or epilogue).
    """
    heads = tuple(
        (("\r\n" if i else "") + f"--{boundary}\r\nContent-Type: {part_type}\r\n"
         f"Content-Range: {r.content_range(size)}\r\n\r\n").encode("ascii")
        for i, r in enumerate(ranges))
    closing = f"\r\n--{boundary}--\r\n".encode("ascii")
    length = sum(len(h) for h in heads) + sum(r.length for r in ranges) + len(closing)
    return MultipartFrames(f"multipart/byteranges; boundary={boundary}", heads, closing, length)
