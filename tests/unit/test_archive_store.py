"""Random access to Crypt4GH archive objects: plaintext ranges, streams and copies for a reader's key."""

from __future__ import annotations

import io
import os

import crypt4gh.lib
import pytest
from crypt4gh import sodium
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus.infra.archive_store import (SEGMENT_SIZE, ArchivedObject, ArchiveFormatError, BytesSource,
                                           plaintext_size)
from tests.data import DATA

SECRET = bytes(range(32))
PUBLIC = sodium.derive_pk(SECRET)
PLAIN = (DATA / "variants" / "HG02102.vcf.gz").read_bytes()[: 5 * SEGMENT_SIZE + 1234]


def _encrypt(data: bytes, public: bytes = PUBLIC) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.encrypt([(0, os.urandom(32), public)], io.BytesIO(data), out)
    return out.getvalue()


STORED = _encrypt(PLAIN)


def _decrypt(data: bytes, secret: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.decrypt([(0, secret, None)], io.BytesIO(data), out)
    return out.getvalue()


async def _open(stored: bytes = STORED) -> ArchivedObject:
    return await ArchivedObject.open(BytesSource(stored), SECRET)


async def _collect(stream) -> bytes:
    return b"".join([piece async for piece in stream])


async def test_size_is_the_plaintext_size():
    obj = await _open()
    assert obj.size == len(PLAIN)
    assert plaintext_size(0) == 0


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(0, len(PLAIN)), st.integers(0, len(PLAIN)))
async def test_any_range_reads_and_streams_the_plaintext(a, b):
    start, end = min(a, b), max(a, b)
    obj = await _open()
    assert await obj.read(start, end) == PLAIN[start:end]
    assert await _collect(obj.stream(start, end)) == PLAIN[start:end]


async def test_reads_past_the_end_are_clipped():
    obj = await _open()
    assert await obj.read(len(PLAIN) - 3, len(PLAIN) + 100) == PLAIN[-3:]
    assert await obj.read(len(PLAIN) + 5, len(PLAIN) + 9) == b""


async def test_a_copy_for_another_key_decrypts_to_the_plaintext_and_keeps_the_body():
    obj = await _open()
    reader = os.urandom(32)
    header = obj.header_for(sodium.derive_pk(reader))
    body = await _collect(obj.body_stream())
    assert body == STORED[obj.body_offset:]
    assert _decrypt(header + body, reader) == PLAIN
    with pytest.raises(ValueError):  # the archive key cannot read the copy's header: it was made for the reader
        _decrypt(header + body, os.urandom(32))


async def test_an_edit_list_in_the_copy_keeps_only_the_listed_bytes():
    obj = await _open()
    reader = os.urandom(32)
    header = obj.header_for(sodium.derive_pk(reader), [10, 100, SEGMENT_SIZE, 5])
    body = await _collect(obj.body_stream())
    assert _decrypt(header + body, reader) == PLAIN[10:110] + PLAIN[SEGMENT_SIZE + 110:SEGMENT_SIZE + 115]


async def test_the_wrong_key_altered_bytes_and_non_crypt4gh_objects_are_refused():
    with pytest.raises(ArchiveFormatError, match="archive key"):
        await ArchivedObject.open(BytesSource(_encrypt(PLAIN, sodium.derive_pk(os.urandom(32)))), SECRET)
    with pytest.raises(ArchiveFormatError, match="Crypt4GH"):
        await ArchivedObject.open(BytesSource(b"not crypt4gh at all, just text" * 10), SECRET)
    altered = bytearray(STORED)
    altered[-100] ^= 1
    obj = await _open(bytes(altered))
    with pytest.raises(ArchiveFormatError, match="altered"):
        await obj.read(len(PLAIN) - 10, len(PLAIN))
