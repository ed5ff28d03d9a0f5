"""htsget 1.3 requests and tickets, without I/O: what a request asks, and the URLs that answer it.

The router (``gateway/routers/htsget.py``) reads the object, authorizes and plans; this module
holds the decisions it relies on, so they are tested without a server:

- ``from_get`` / ``from_post`` check a request as htsget 1.3 says (format, ``class=header`` alone,
  ``start``/``end`` need a ``referenceName`` and no ``*``, ``start > end`` is ``InvalidRange`` (a POST
  region's ``start >= end`` too), unknown ``fields``, ``tags`` meeting ``notags``, an empty region
  list) and raise ``HtsError`` with htsget's error names.
- ``client_public_key`` reads the reader's Crypt4GH key from the ``Htsget-Context-Public-Key``
  header, as htsget-rs and this node's DRS do (``gateway/reader_keys.py``).
- ``c4gh_selection`` turns plaintext byte ranges into the cipher segments that hold them and the
  Crypt4GH edit list that makes a reader output exactly those ranges from those segments.

The node serves each file in its own format and whole records: ``fields``, ``tags`` and ``notags``
are checked but do not filter (htsget lets a server answer more than asked; service-info says so
with ``fieldsParameterEffective`` and ``tagsParametersEffective`` false).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from genomebus.gateway.reader_keys import CLIENT_PUBLIC_KEY_HEADER, parse_public_key
from genomebus.infra.archive_store import CIPHER_SEGMENT_SIZE, SEGMENT_SIZE
from genomebus.infra.hts import FORMATS, HtsError, Region

Endpoint = Literal["reads", "variants"]

HTSGET_VERSION = "1.3.0"
TICKET_MEDIA_TYPE = f"application/vnd.ga4gh.htsget.v{HTSGET_VERSION}+json"
"""htsget 1.3: JSON responses SHOULD name the protocol version in their Content-Type."""

READ_FIELDS = ("QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR", "RNEXT", "PNEXT", "TLEN", "SEQ", "QUAL")
"""htsget's field names (the BAM fields), for ``fields`` on the reads endpoint."""

ENCRYPTION_SCHEME = "encryptionScheme"
"""The htsget-rs extension's parameter (GET query, POST body): ``C4GH`` asks for a Crypt4GH ticket."""
C4GH = "C4GH"
PUBLIC_KEY_HEADER = CLIENT_PUBLIC_KEY_HEADER
"""The header with the reader's Crypt4GH public key (htsget-rs: base64 of the key file), as DRS reads it."""

GET_PARAMETERS = ("format", "class", "referenceName", "start", "end", "fields", "tags", "notags")
MAX_GET_POSITION = 2**32 - 1
"""htsget 1.3 GET: ``start`` and ``end`` are 32-bit unsigned integers."""
MAX_POST_POSITION = 2**63 - 1
"""htsget 1.3 POST: unsigned integers (the OpenAPI says int64)."""
MAX_POST_BYTES = 1 << 20
MAX_REGIONS = 1000
"""A POST body larger than this, or with more regions, is ``PayloadTooLarge`` (413)."""
MAX_URL_BYTES = 1 << 30
"""htsget: "data blocks should not exceed ~1GB", so a longer byte range is cut into several URLs."""
MAX_AUDIT_REGION = 1000


@dataclass(frozen=True)
class TicketRequest:
    """What one ticket request asks, checked: ``regions`` None is the whole file."""

    endpoint: Endpoint
    format: str | None = None
    """The format asked for (upper case), None when the request names none."""
    header_only: bool = False
    regions: tuple[Region, ...] | None = None
    fields: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    notags: tuple[str, ...] | None = None
    c4gh: bool = False


def invalid(message: str) -> HtsError:
    return HtsError("InvalidInput", message)


# -- requests --------------------------------------------------------------------------------------------------------


def from_get(endpoint: Endpoint, *, format: str | None = None, klass: str | None = None,
             reference_name: str | None = None, start: int | None = None, end: int | None = None,
             fields: Sequence[str] | None = None, tags: Sequence[str] | None = None,
             notags: Sequence[str] | None = None, encryption_scheme: str | None = None) -> TicketRequest:
    """A GET request's parameters, checked (lists may come repeated, comma-separated, or both)."""
    header_only = _class(klass)
    if header_only:
        others = {"referenceName": reference_name, "start": start, "end": end, "fields": fields, "tags": tags,
                  "notags": notags}
        given = [name for name, value in others.items() if value is not None]
        if given:
            raise invalid(f"class=header takes no other parameter than format (got {', '.join(given)})")
    regions = None
    if reference_name is not None:
        regions = (_region(endpoint, reference_name, start, end, post=False),)
    elif start is not None or end is not None:
        raise invalid("start and end need a referenceName")
    return TicketRequest(endpoint, _format(endpoint, format), header_only, regions,
                         *_filters(_split(fields), _split(tags), _split(notags)),
                         c4gh=_encryption(encryption_scheme))


def from_post(endpoint: Endpoint, body: Any) -> TicketRequest:
    """A POST request's JSON body (already parsed; ``None`` for no body), checked."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    format = _optional(body, "format", str)
    klass = _optional(body, "class", str)
    fields = _string_list(body, "fields") if endpoint == "reads" else None
    tags, notags = _string_list(body, "tags"), _string_list(body, "notags")
    scheme = _optional(body, ENCRYPTION_SCHEME, str)
    regions = None
    if "regions" in body:
        raw = body["regions"]
        if not isinstance(raw, list):
            raise invalid("regions must be a list of regions")
        if not raw:
            raise invalid("the region list is empty: leave regions out to ask for the whole file")
        regions = tuple(_post_region(endpoint, r) for r in raw)
    header_only = _class(klass)
    if header_only:
        given = [name for name in ("regions", "fields", "tags", "notags") if name in body]
        if given:
            raise invalid(f"class=header takes no other parameter than format (got {', '.join(given)})")
    return TicketRequest(endpoint, _format(endpoint, format), header_only, regions,
                         *_filters(fields, tags, notags), c4gh=_encryption(scheme))


def _class(klass: str | None) -> bool:
    if klass is None:
        return False
    if klass != "header":
        raise invalid(f"class must be 'header' (or absent for the whole file), not {klass!r}")
    return True


def _format(endpoint: Endpoint, format: str | None) -> str | None:
    if format is None:
        return None
    if format.upper() not in FORMATS[endpoint]:
        raise HtsError("UnsupportedFormat", f"the {endpoint} endpoint serves {' or '.join(FORMATS[endpoint])}, "
                                            f"not {format!r}")
    return format.upper()


def _encryption(scheme: str | None) -> bool:
    if scheme is None:
        return False
    if scheme.upper() != C4GH:
        raise HtsError("UnsupportedFormat", f"the only {ENCRYPTION_SCHEME} is {C4GH}, not {scheme!r}")
    return True


def _region(endpoint: Endpoint, name: str, start: int | None, end: int | None, *, post: bool) -> Region:
    if not name:
        raise invalid("referenceName must not be empty")
    if name == "*":
        if endpoint != "reads":
            raise invalid("referenceName '*' (unplaced unmapped reads) is for the reads endpoint only")
        if start is not None or end is not None:
            raise invalid("referenceName '*' (unplaced unmapped reads) takes no start or end")
    if start is not None and end is not None and (start > end or (post and start == end)):
        raise HtsError("InvalidRange", f"start {start} is {'greater than' if start > end else 'equal to'} end {end}")
    return Region(name, start, end)


def _post_region(endpoint: Endpoint, raw: Any) -> Region:
    if not isinstance(raw, dict):
        raise invalid("each region must be an object with a referenceName")
    if "referenceName" not in raw:
        raise invalid("each region needs a referenceName")
    name = _optional(raw, "referenceName", str)
    start, end = (_optional(raw, key, int) for key in ("start", "end"))
    assert name is not None
    return _region(endpoint, name, start, end, post=True)


def _optional(body: Mapping[str, Any], key: str, kind: type, *, maximum: int = MAX_POST_POSITION) -> Any:
    """``body[key]`` if present, of JSON type ``kind`` (no null, no bool for an integer, 0 to ``maximum``), else None."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid(f"{key} must be {'an integer' if kind is int else 'a string'}")
    if kind is int and not 0 <= value <= maximum:
        raise invalid(f"{key} must be between 0 and {maximum}")
    return value


def _string_list(body: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"{key} must be a list of strings")
    return tuple(value)


def _split(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """A GET list: repeated parameters, each comma-separated; ``tags=`` alone is the empty list."""
    if values is None:
        return None
    items = tuple(item for value in values for item in value.split(","))
    return () if items == ("",) or not items else items


def _filters(fields: tuple[str, ...] | None, tags: tuple[str, ...] | None,
             notags: tuple[str, ...] | None) -> tuple[tuple[str, ...] | None, ...]:
    if fields is not None:
        if unknown := [f for f in fields if f not in READ_FIELDS]:
            raise invalid(f"unknown field {', '.join(map(repr, unknown))}: fields are {', '.join(READ_FIELDS)}")
    for name, values in (("tags", tags), ("notags", notags)):
        if values is not None and any(not v for v in values):
            raise invalid(f"{name} holds an empty tag name")
    if tags is not None and notags is not None and (both := sorted(set(tags) & set(notags))):
        raise invalid(f"tags and notags both name {', '.join(both)}")
    return fields, tags, notags


def audit_region(request: TicketRequest) -> str:
    """The region an audit event names: ``header``, ``all``, or the regions (``chr1:100-200``, ``chr2``, ``*``)."""
    if request.header_only:
        return "header"
    if request.regions is None:
        return "all"
    parts = [r.reference_name if r.start is None and r.end is None
             else f"{r.reference_name}:{r.start or 0}-{'' if r.end is None else r.end}" for r in request.regions]
    text = ",".join(parts)
    if len(text) > MAX_AUDIT_REGION:
        kept = text[:MAX_AUDIT_REGION - 40].rsplit(",", 1)[0]
        text = f"{kept},... ({len(parts) - kept.count(',') - 1} more regions)"
    return text


# -- the reader's key ------------------------------------------------------------------------------------------------


def client_public_key(value: str | None) -> bytes:
    """The 32 raw bytes of the reader's Crypt4GH public key from the ``Htsget-Context-Public-Key`` header."""
    if not value:
        raise invalid(f"{ENCRYPTION_SCHEME}={C4GH} needs the reader's Crypt4GH public key in the "
                      f"{PUBLIC_KEY_HEADER} header (base64 of the `crypt4gh keygen` .pub file)")
    try:
        return parse_public_key(value)
    except ValueError as exc:
        raise invalid(f"the {PUBLIC_KEY_HEADER} header is not accepted: {exc}") from None


# -- Crypt4GH selections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class C4ghSelection:
    """The cipher segments to send (runs of segment numbers, ends exclusive) and the edit list over their plaintext."""

    runs: tuple[tuple[int, int], ...]
    edit_list: tuple[int, ...]

    def body_ranges(self, body_size: int, max_bytes: int = MAX_URL_BYTES) -> list[tuple[int, int]]:
        """The stored body's byte ranges ``[a, b)`` of the runs, each cut to at most ``max_bytes`` (whole segments)."""
        step = max(1, max_bytes // CIPHER_SEGMENT_SIZE) * CIPHER_SEGMENT_SIZE
        ranges = []
        for first, end in self.runs:
            start, stop = first * CIPHER_SEGMENT_SIZE, min(body_size, end * CIPHER_SEGMENT_SIZE)
            ranges += [(a, min(stop, a + step)) for a in range(start, stop, step)]
        return ranges


def merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges in the order given, empty ones dropped and touching or overlapping ones joined; out of order is a bug."""
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if end <= start:
            continue
        if merged and start < merged[-1][0]:
            raise ValueError("byte ranges out of file order")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def c4gh_selection(ranges: Iterable[tuple[int, int]]) -> C4ghSelection:
    """The segments holding plaintext ``ranges`` (in file order) and the edit list that keeps exactly those bytes.

    A Crypt4GH edit list alternates lengths to skip and to keep, starting with a skip, over the
    plaintext of the body the reader decrypts: here, the selected segments one after another. Each
    segment is sent once, however many ranges it holds; segments holding none are not sent, so a
    range's offset in that plaintext is its offset in the file less the segments left out before it.
    """
    wanted = merge(ranges)
    runs: list[list[int]] = []
    for start, end in wanted:
        first, last = start // SEGMENT_SIZE, (end - 1) // SEGMENT_SIZE + 1
        if runs and first <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], last)
        else:
            runs.append([first, last])
    edits: list[int] = []
    cursor = 0  # offset in the concatenated plaintext of the selected segments
    run, base = 0, 0  # the run holding the current range, and where its plaintext starts in the concatenation
    for start, end in wanted:
        while start // SEGMENT_SIZE >= runs[run][1]:
            base += (runs[run][1] - runs[run][0]) * SEGMENT_SIZE
            run += 1
        at = base + start - runs[run][0] * SEGMENT_SIZE
        if edits and at == cursor:  # only left-out segments lay between: one keep
            edits[-1] += end - start
        else:
            edits += [at - cursor, end - start]
        cursor = at + end - start
    return C4ghSelection(tuple((a, b) for a, b in runs), tuple(edits))


def data_uri(media_type: str, data: bytes) -> str:
    """An inline ``data:`` URI (RFC 2397, base64, as htsget requires)."""
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def split_range(start: int, end: int, max_bytes: int = MAX_URL_BYTES) -> list[tuple[int, int]]:
    """``[start, end)`` as ranges of at most ``max_bytes``."""
    return [(a, min(end, a + max_bytes)) for a in range(start, end, max_bytes)]


def range_header(start: int, end: int) -> dict[str, str]:
    """The HTTP Range header of bytes ``[start, end)``."""
    return {"Range": f"bytes={start}-{end - 1}"}
