"""Random access to the Crypt4GH archive: plaintext byte ranges, and copies re-encrypted for a reader.

An archived object is a Crypt4GH v1 file: a header (packets encrypted for the node's archive key,
holding the data key) and a body of segments, each 65,536 plaintext bytes encrypted on their own
with ChaCha20-Poly1305 (12-byte nonce + ciphertext + 16-byte tag = 65,564 bytes; the last one
shorter). So the plaintext bytes ``[start, end)`` live in segments ``start // 65536`` to
``(end - 1) // 65536``, whose ciphertext is one contiguous range of the object: a read fetches
that range from the object store, decrypts those segments and trims them, never the whole file.

- ``ArchivedObject.open(source, secret_key)`` reads and decrypts the header once (the data key
  is kept in memory, never logged) and knows the plaintext size from the ciphertext size.
- ``read(start, end)`` returns plaintext bytes; ``stream(start, end)`` yields them in pieces of
  about a megabyte from one ranged GET, so memory stays bounded whatever the range.
- ``header_for(recipient_public_key, edit_list=None)`` is a new header whose packets are the
  stored ones decrypted and encrypted again for the reader's key (optionally with an edit list,
  which Crypt4GH readers apply to the body's plaintext): with the stored body (``body_stream``)
  it is a Crypt4GH file the reader decrypts, and the node never decrypts the body to make it.

Objects written by the archive carry no edit list; one that does is refused (``ArchiveFormatError``)
rather than served with bytes its own header says to skip.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import crypt4gh.header
from crypt4gh import sodium

SEGMENT_SIZE = 65536
CIPHER_OVERHEAD = 12 + 16
CIPHER_SEGMENT_SIZE = SEGMENT_SIZE + CIPHER_OVERHEAD
_HEADER_PROBE = 4096
_STREAM_SEGMENTS = 16  # about 1 MiB of plaintext per piece


class ArchiveFormatError(ValueError):
    """An archived object that is not a Crypt4GH file this node can serve (wrong key, edit list, truncated)."""


class RangeSource(Protocol):
    """The stored (encrypted) bytes of one object, readable by range."""

    size: int

    async def read(self, start: int, end: int) -> bytes:
        """The stored bytes ``[start, end)``."""

    def stream(self, start: int, end: int) -> AsyncIterator[bytes]:
        """The stored bytes ``[start, end)`` in pieces of any size."""


class S3Source:
    """An object in the object store, read by ranged GETs."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int) -> None:
        self.s3, self.bucket, self.key, self.size = s3, bucket, key, size

    async def read(self, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        response = await self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")
        async with response["Body"] as body:
            return await body.read()

    async def stream(self, start: int, end: int) -> AsyncIterator[bytes]:
        if end <= start:
            return
        response = await self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}")
        async with response["Body"] as body:
            async for piece in body.iter_chunks(CIPHER_SEGMENT_SIZE * 4):
                yield piece


class FileSource:
    """A local Crypt4GH file (tests, benchmarks, tools)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size

    async def read(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(max(0, end - start))

    async def stream(self, start: int, end: int) -> AsyncIterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(start)
            left = max(0, end - start)
            while left:
                piece = f.read(min(left, CIPHER_SEGMENT_SIZE * 4))
                if not piece:
                    return
                left -= len(piece)
                yield piece


class BytesSource:
    """Stored bytes already in memory (tests)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    async def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]

    async def stream(self, start: int, end: int) -> AsyncIterator[bytes]:
        for offset in range(start, min(end, self.size), CIPHER_SEGMENT_SIZE * 4):
            yield self.data[offset:min(end, offset + CIPHER_SEGMENT_SIZE * 4)]


def plaintext_size(body_size: int) -> int:
    """The plaintext size of a Crypt4GH body of ``body_size`` bytes."""
    full, rest = divmod(body_size, CIPHER_SEGMENT_SIZE)
    if rest and rest <= CIPHER_OVERHEAD:
        raise ArchiveFormatError("the object's last segment is truncated")
    return full * SEGMENT_SIZE + (rest - CIPHER_OVERHEAD if rest else 0)


@dataclass(frozen=True)
class Header:
    """A parsed and decrypted Crypt4GH header."""

    length: int
    packets: tuple[bytes, ...]
    """The stored (encrypted) header packets, as ``crypt4gh.header.parse`` yields them."""
    session_keys: tuple[bytes, ...]


def parse_header(data: bytes, secret_key: bytes) -> Header:
    """Parse and decrypt a header from the first bytes of an object (``data`` must hold all of it)."""
    stream = io.BytesIO(data)
    try:
        packets = tuple(crypt4gh.header.parse(stream))
    except ValueError as exc:
        raise ArchiveFormatError(f"not a Crypt4GH object: {exc}") from None
    length = stream.tell()
    if length > len(data) or any(len(p) == 0 for p in packets):
        raise ArchiveFormatError("the Crypt4GH header is longer than the bytes read")
    decrypted, _ = crypt4gh.header.decrypt(list(packets), [(0, secret_key, None)])
    if not decrypted:
        raise ArchiveFormatError("no header packet decrypts with the archive key")
    data_packets, edit_packet = crypt4gh.header.partition_packets(decrypted)
    if edit_packet is not None:
        raise ArchiveFormatError("the object's header has an edit list; archived objects never do")
    keys = tuple(bytes(crypt4gh.header.parse_enc_packet(p)) for p in data_packets)
    if not keys:
        raise ArchiveFormatError("the Crypt4GH header holds no data key")
    return Header(length, packets, keys)


def _header_length(data: bytes) -> int | None:
    """The header's length from its first bytes, or None if ``data`` does not reach its end."""
    if len(data) < 16:
        return None
    count = int.from_bytes(data[12:16], "little")
    offset = 16
    for _ in range(count):
        if len(data) < offset + 4:
            return None
        offset += int.from_bytes(data[offset:offset + 4], "little")
    return offset


def decrypt_segments(data: bytes | memoryview, session_keys: Sequence[bytes]) -> bytes:
    """Decrypt whole cipher segments (the last may be short) into their plaintext."""
    out = bytearray()
    plain = bytearray(SEGMENT_SIZE)
    view = memoryview(data)
    for offset in range(0, len(view), CIPHER_SEGMENT_SIZE):
        segment = view[offset:offset + CIPHER_SEGMENT_SIZE]
        if len(segment) <= CIPHER_OVERHEAD:
            raise ArchiveFormatError("a segment of the object is truncated")
        for key in session_keys:
            try:
                length = sodium.chacha20poly1305_decrypt(plain, segment, key)
                break
            except Exception:  # noqa: BLE001 - libsodium says only that it failed; try the next key
                continue
        else:
            raise ArchiveFormatError("a segment of the object does not decrypt: it was altered or truncated")
        out += plain[:length]
    return bytes(out)


class ArchivedObject:
    """One archived Crypt4GH object, readable by plaintext range."""

    def __init__(self, source: RangeSource, header: Header) -> None:
        self.source = source
        self.header = header
        self.body_offset = header.length
        self.size = plaintext_size(source.size - header.length)
        self._segments: OrderedDict[int, bytes] = OrderedDict()

    @classmethod
    async def open(cls, source: RangeSource, secret_key: bytes) -> ArchivedObject:
        data = await source.read(0, min(source.size, _HEADER_PROBE))
        length = _header_length(data)
        if length is not None and length > len(data):
            data = await source.read(0, min(source.size, length))
        if length is None or length > source.size:
            raise ArchiveFormatError("the object is shorter than its Crypt4GH header")
        return cls(source, parse_header(data, secret_key))

    @property
    def body_size(self) -> int:
        return self.source.size - self.body_offset

    def cipher_range(self, start: int, end: int) -> tuple[int, int]:
        """The body offsets ``[a, b)`` of the cipher segments that hold plaintext ``[start, end)``."""
        first, last = start // SEGMENT_SIZE, (end - 1) // SEGMENT_SIZE
        return first * CIPHER_SEGMENT_SIZE, min(self.body_size, (last + 1) * CIPHER_SEGMENT_SIZE)

    async def read(self, start: int, end: int) -> bytes:
        """The plaintext bytes ``[start, end)`` (clipped to the object)."""
        end = min(end, self.size)
        if end <= start:
            return b""
        first, last = start // SEGMENT_SIZE, (end - 1) // SEGMENT_SIZE
        if first == last and first in self._segments:  # small reads (index and block headers) hit a cache
            self._segments.move_to_end(first)
            plain = self._segments[first]
        else:
            a, b = self.cipher_range(start, end)
            raw = await self.source.read(self.body_offset + a, self.body_offset + b)
            plain = await _decrypt(raw, self.header.session_keys)
            if first == last:
                self._segments[first] = plain
                while len(self._segments) > 32:
                    self._segments.popitem(last=False)
        skip = start - first * SEGMENT_SIZE
        return plain[skip:skip + end - start]

    async def stream(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The plaintext bytes ``[start, end)`` in pieces of about a megabyte, from one ranged GET."""
        end = self.size if end is None else min(end, self.size)
        if end <= start:
            return
        a, b = self.cipher_range(start, end)
        skip = start - (start // SEGMENT_SIZE) * SEGMENT_SIZE
        left = end - start
        pending = bytearray()
        chunk = CIPHER_SEGMENT_SIZE * _STREAM_SEGMENTS
        async for piece in self.source.stream(self.body_offset + a, self.body_offset + b):
            pending += piece
            whole = len(pending) - len(pending) % CIPHER_SEGMENT_SIZE
            if whole >= chunk:
                plain = await _decrypt(bytes(pending[:whole]), self.header.session_keys)
                del pending[:whole]
                out = plain[skip:skip + left]
                skip, left = 0, left - len(out)
                yield out
        if pending and left:
            plain = await _decrypt(bytes(pending), self.header.session_keys)
            out = plain[skip:skip + left]
            left -= len(out)
            yield out
        if left:
            raise ArchiveFormatError("the object store returned fewer bytes than the object holds")

    async def body_stream(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The stored body bytes ``[start, end)`` (body offsets), as they are: never decrypted."""
        end = self.body_size if end is None else min(end, self.body_size)
        async for piece in self.source.stream(self.body_offset + start, self.body_offset + end):
            yield piece

    def header_for(self, recipient_public_key: bytes, edit_list: Sequence[int] | None = None) -> bytes:
        """A Crypt4GH header for ``recipient_public_key`` over this object's body (optionally with an edit list)."""
        packets = [crypt4gh.header.make_packet_data_enc(0, key)
                   for key in self.header.session_keys]
        if edit_list:
            packets.append(crypt4gh.header.make_packet_data_edit_list(list(edit_list)))
        writer = os.urandom(32)  # an ephemeral writer key, as `crypt4gh encrypt` without --sk
        encrypted = [p for packet in packets for p in crypt4gh.header.encrypt(packet, [(0, writer, recipient_public_key)])]
        return crypt4gh.header.serialize(encrypted)


async def _decrypt(raw: bytes, session_keys: Sequence[bytes]) -> bytes:
    if len(raw) <= CIPHER_SEGMENT_SIZE * 2:
        return decrypt_segments(raw, session_keys)
    return await asyncio.to_thread(decrypt_segments, raw, session_keys)


class Archive:
    """The archive as a reader sees it: objects opened once (header decrypted), small indexes kept decrypted.

    One per gateway process. Opened objects are cached by key (their header and a few decrypted
    segments: a few hundred bytes plus at most 32 segments each), indexes up to ``index_cache_bytes``
    in all; both least recently used first out. Archive objects are content-addressed and never
    overwritten, so nothing cached can go stale.
    """

    def __init__(self, s3: Any, secret_key: bytes, *, objects: int = 64, index_cache_bytes: int = 64 << 20) -> None:
        self.s3 = s3
        self._secret_key = secret_key
        self._objects: OrderedDict[tuple[str, str], ArchivedObject] = OrderedDict()
        self._max_objects = objects
        self._indexes: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._index_bytes = 0
        self._max_index_bytes = index_cache_bytes

    async def open(self, bucket: str, key: str, size: int | None = None) -> ArchivedObject:
        """The archived object at ``bucket``/``key`` (``size``: its stored size, if known; else asked for)."""
        cached = self._objects.get((bucket, key))
        if cached is not None:
            self._objects.move_to_end((bucket, key))
            return cached
        if size is None:
            size = int((await self.s3.head_object(Bucket=bucket, Key=key))["ContentLength"])
        obj = await ArchivedObject.open(S3Source(self.s3, bucket, key, size), self._secret_key)
        self._objects[(bucket, key)] = obj
        while len(self._objects) > self._max_objects:
            self._objects.popitem(last=False)
        return obj

    async def index(self, bucket: str, key: str) -> bytes:
        """The decrypted bytes of an archived index (``.bai``, ``.crai``, ``.tbi``, ``.csi``)."""
        cached = self._indexes.get((bucket, key))
        if cached is not None:
            self._indexes.move_to_end((bucket, key))
            return cached
        obj = await self.open(bucket, key)
        data = b"".join([piece async for piece in obj.stream()])
        self._indexes[(bucket, key)] = data
        self._index_bytes += len(data)
        while self._index_bytes > self._max_index_bytes and len(self._indexes) > 1:
            _, dropped = self._indexes.popitem(last=False)
            self._index_bytes -= len(dropped)
        return data
