"""HTTP Range parsing (RFC 9110 §14) and multipart/byteranges framing, without a server."""

from __future__ import annotations

import email.parser
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus.gateway import ranges
from genomebus.gateway.ranges import ByteRange, RangeNotSatisfiable

SIZE = 1000


def parse(header: str | None, size: int = SIZE) -> list[tuple[int, int]] | None:
    got = ranges.parse(header, size)
    return None if got is None else [(r.start, r.end) for r in got]


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-0", [(0, 1)]),  # the first byte
    ("bytes=999-999", [(999, 1000)]),  # the last byte
    ("bytes=-1", [(999, 1000)]),  # the last byte, as a suffix
    ("bytes=-100", [(900, 1000)]),
    ("bytes=-5000", [(0, 1000)]),  # a suffix longer than the object is all of it
    ("bytes=500-", [(500, 1000)]),  # open-ended
    ("bytes=0-", [(0, 1000)]),
    ("bytes=10-5000", [(10, 1000)]),  # last-pos past the end is clipped
    ("bytes=0-99999999999999999999999999999", [(0, 1000)]),  # huge numbers are just large
    ("bytes=-99999999999999999999999999999", [(0, 1000)]),
    ("bytes=0-" + "9" * 5000, [(0, 1000)]),  # past int()'s digit limit
    ("bytes=0-9,20-29", [(0, 10), (20, 30)]),  # several
    ("bytes=20-29,0-9", [(0, 10), (20, 30)]),  # sorted
    ("bytes=0-9,5-14", [(0, 15)]),  # overlapping ranges are coalesced
    ("bytes=0-9,10-19", [(0, 20)]),  # so are adjacent ones
    ("bytes=0-9,2-3", [(0, 10)]),  # and contained ones
    ("bytes=0-9,-10", [(0, 10), (990, 1000)]),
    ("bytes=0-9, 20-29 ,", [(0, 10), (20, 30)]),  # whitespace and empty list elements are allowed
    ("Bytes=0-0", [(0, 1)]),  # the unit is case-insensitive
    ("bytes=0-9,2000-3000", [(0, 10)]),  # an unsatisfiable range beside a satisfiable one is dropped
])
def test_satisfiable_ranges(header, expected):
    assert parse(header) == expected


@pytest.mark.parametrize("header", [
    None, "", "bytes", "bytes=", "bytes=,", "bytes=-", "bytes=5-1", "bytes=abc", "bytes=1-2-3", "bytes=0x10-",
    "bytes=+1-2", "bytes=1 - 2", "bytes = 0-1", "items=0-1", "0-1", "bytes=0-1;x", "bytes=٣-٤",
    "bytes=" + ",".join(["0-0"] * (ranges.MAX_RANGE_SPECS + 1)),  # too many: ignored, as a server may
    "bytes=0-1,5-1",  # one invalid range-spec makes the whole header invalid
])
def test_an_invalid_header_is_ignored(header):
    assert parse(header) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1000", "bytes=5000-6000", "bytes=-0",
                                    "bytes=1000-,2000-", "bytes=" + "9" * 30 + "-"])
def test_no_satisfiable_range_is_416_with_the_size(header):
    with pytest.raises(RangeNotSatisfiable) as refused:
        ranges.parse(header, SIZE)
    assert refused.value.content_range == "bytes */1000"


def test_an_empty_object_has_no_byte_to_range_over():
    assert parse("bytes=-5", 0) is None  # satisfiable (a suffix): the whole, empty object
    with pytest.raises(RangeNotSatisfiable):
        ranges.parse("bytes=0-0", 0)


def test_ranges_are_described_as_the_audit_records_them():
    assert ranges.describe([ByteRange(0, 1), ByteRange(990, 1000)]) == "bytes=0-0,990-999"
    assert ByteRange(5, 10).content_range(SIZE) == "bytes 5-9/1000"


DATA = bytes(range(256)) * 7 + b"tail"


def serve(data: bytes, chosen: list[ByteRange], boundary: str = "b0undary") -> tuple[str, bytes]:
    """What the data endpoint sends for ``chosen`` of ``data``: the content type and the body."""
    if len(chosen) == 1:
        return "application/octet-stream", data[chosen[0].start:chosen[0].end]
    frames = ranges.multipart_frames(chosen, len(data), "application/vnd.ga4gh.bam", boundary)
    body = b"".join(head + data[r.start:r.end] for head, r in zip(frames.heads, chosen, strict=True)) + frames.closing
    assert len(body) == frames.content_length
    return frames.content_type, body


def parts_of(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """The parts of a multipart body, as a real MIME parser reads them: type, range, bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    assert message.is_multipart() and message.get_content_type() == "multipart/byteranges"
    assert not message.defects, message.defects
    return [(part["Content-Type"], part["Content-Range"], part.get_payload(decode=True))
            for part in message.iter_parts()]


def test_a_multipart_body_parses_back_into_its_ranges():
    chosen = ranges.parse("bytes=0-0,10-19,-4", len(DATA))
    content_type, body = serve(DATA, chosen)
    assert parts_of(content_type, body) == [
        ("application/vnd.ga4gh.bam", f"bytes 0-0/{len(DATA)}", DATA[0:1]),
        ("application/vnd.ga4gh.bam", f"bytes 10-19/{len(DATA)}", DATA[10:20]),
        ("application/vnd.ga4gh.bam", f"bytes {len(DATA) - 4}-{len(DATA) - 1}/{len(DATA)}", b"tail"),
    ]


def test_a_part_holding_crlf_and_boundary_like_bytes_survives():
    data = b"\r\n--b0undary\r\n\r\n" * 10
    chosen = ranges.parse("bytes=0-15,40-80", len(data))
    content_type, body = serve(data, chosen, boundary="8f2c9e1d0a")
    assert [p[2] for p in parts_of(content_type, body)] == [data[0:16], data[40:81]]


_spec = st.one_of(
    st.tuples(st.integers(0, len(DATA) - 1), st.integers(0, 3 * len(DATA))).map(
        lambda t: f"{t[0]}-{max(t)}"),
    st.integers(0, len(DATA) - 1).map(lambda a: f"{a}-"),
    st.integers(1, 3 * len(DATA)).map(lambda n: f"-{n}"),
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(_spec, min_size=1, max_size=8))
def test_any_satisfiable_range_set_serves_exactly_its_slices(specs):
    header = "bytes=" + ",".join(specs)
    chosen = ranges.parse(header, len(DATA))
    assert chosen is not None
    # The union of what was asked is what is served, in order, without overlap.
    asked = set()
    for spec in specs:
        first, last = spec.split("-")
        if first:
            asked |= set(range(int(first), min(len(DATA), int(last) + 1) if last else len(DATA)))
        else:
            asked |= set(range(max(0, len(DATA) - int(last)), len(DATA)))
    served = [i for r in chosen for i in range(r.start, r.end)]
    assert served == sorted(asked)
    assert all(a.end < b.start for a, b in zip(chosen, chosen[1:]))  # coalesced: a gap between parts
    content_type, body = serve(DATA, chosen)
    if len(chosen) == 1:
        assert body == DATA[chosen[0].start:chosen[0].end]
    else:
        assert [(p[1], p[2]) for p in parts_of(content_type, body)] == [
            (r.content_range(len(DATA)), DATA[r.start:r.end]) for r in chosen]
