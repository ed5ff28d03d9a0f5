"""The bytes behind a signed data URL (a DRS access URL, an htsget ticket URL): ``/data/objects/{object_id}``.

Each request goes through the enforcement point again (``Enforcer.authorize_data_url``): the URL's
signature and expiry, then the right it was issued on, checked now (a grant revoked since stops
the next request: 403). An object this node does not serve is 404 before that, without an audit
event (nothing was read); one whose dataset is no longer released is the enforcement point's
audited 404. The path may name the object by its DRS id or its alias; the URL's ticket names the
DRS id.

What is served is the ticket's mode:

- ``plain``: the decrypted bytes, streamed from the archive (about a megabyte at a time, whatever
  the object's size). HTTP ranges as RFC 9110 says (``gateway/ranges.py``): one range → 206 with
  ``Content-Range``; several → 206 ``multipart/byteranges`` (overlapping and adjacent ranges
  coalesced); none satisfiable → 416 ``Content-Range: bytes */size``; an invalid header is
  ignored (200). ``If-Range`` with anything but the current ETag serves the whole object.
- ``c4gh``: a Crypt4GH copy for the ticket's reader: a header made for their key, then the stored
  body. The header is made afresh for every request (a new writer key each time), so byte offsets
  are not stable and ranges are not served: 200 with ``Accept-Ranges: none``.
- ``c4gh-body``: the stored body bytes only, for htsget Crypt4GH tickets (which carry their own
  header); their offsets are stable, so ranges are served as for ``plain``.

Every answer carries ``Content-Length``, ``Content-Disposition``, the ``X-Audit-Event`` of its
decision and (but for ``c4gh``, whose bytes differ each time) an ETag: the plaintext's SHA-256 for
``plain``, a tag derived from it for ``c4gh-body``.

``HEAD`` answers the headers a ``GET`` without ``Range`` would, and no body. It reads no data but
reveals what a read would, so it is authorized and audited as a read (the audit event's resource
says ``HEAD``), with no byte range. A ``Range`` on a ``HEAD`` is ignored, as RFC 9110 §14.2 says
for every method but ``GET``.

The audit event names the object and, for a ranged read in ``plain`` or ``c4gh-body`` mode, the
ranges served (normalised, ``bytes=0-99,200-299``). To know the mode before the decision is
recorded, the URL's ticket is verified once before the enforcement point verifies it again.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from genomebus.gateway import ranges
from genomebus.gateway.deps import ArchiveDep, EnforcerDep, PoolDep
from genomebus.gateway.enforcement import Allowed, Enforcer, Read
from genomebus.gateway.media_types import CRYPT4GH_MEDIA_TYPE, content_disposition, media_type, output_media_type
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra import data_urls
from genomebus.infra.archive_store import Archive, ArchivedObject, ArchiveFormatError
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.readmodels import airlock, files

log = logging.getLogger("genomebus.gateway.data")

router = APIRouter(tags=["data"])

ObjectPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._~-]{1,200}$", description="The object's DRS id or alias")]
TokenQuery = Annotated[str | None, Query(alias=data_urls.QUERY_PARAMETER, max_length=8192,
                                         description="The signed ticket of the data URL")]

_AUDITED = {"X-Audit-Event": {"description": "Id of the audit event recording this read",
                              "schema": {"type": "string", "format": "uuid"}}}
_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The object's bytes (decrypted, or a Crypt4GH copy for the URL's reader)",
          "headers": _AUDITED, "content": _BYTES},
    206: {"description": "The ranges asked for: one range, or several as multipart/byteranges",
          "headers": _AUDITED, "content": _BYTES},
    **problem_responses(401, 403, 404, 416, 503)}
_RESPONSES[416] = {**_RESPONSES[416], "description": "No range asked for is within the object",
                   "headers": {"Content-Range": {"description": "`bytes */<size>`", "schema": {"type": "string"}}}}
_HEAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The headers a GET would answer, without the bytes", "headers": _AUDITED},
    **problem_responses(401, 403, 404, 503)}


@router.get(data_urls.DATA_PATH, responses=_RESPONSES, response_class=Response)
async def read_object(request: Request, object_id: ObjectPath, enforcer: EnforcerDep, pool: PoolDep,
                      archive: ArchiveDep, token: TokenQuery = None) -> Response:
    """The object's bytes, with a data URL from DRS or htsget (``?sig=``)."""
    return await _serve(request, object_id, token, enforcer, pool, archive, head=False)


@router.head(data_urls.DATA_PATH, responses=_HEAD_RESPONSES, response_class=Response)
async def describe_object(request: Request, object_id: ObjectPath, enforcer: EnforcerDep, pool: PoolDep,
                          archive: ArchiveDep, token: TokenQuery = None) -> Response:
    """What a ``GET`` of the data URL would answer, without the bytes (authorized and audited as a read)."""
    return await _serve(request, object_id, token, enforcer, pool, archive, head=True)


async def _serve(request: Request, object_id: str, token: str | None, enforcer: Enforcer, pool: Any,
                 archive: Archive, *, head: bool) -> Response:
    async with pool.acquire() as conn:
        obj = await files.drs_object(conn, object_id) or await airlock.released_object(conn, object_id)
    if obj is None:
        raise Problem(404, "object-not-found", f"this node serves no object {object_id}")
    # Only the holder of a URL that verifies gets the object opened (its header read) before the decision.
    mode = _mode_of(enforcer, token)
    stored = await _open(archive, obj) if mode is not None else None
    range_header = None if head or mode == "c4gh" else request.headers.get("range")
    if range_header is not None and not _if_range_holds(request, obj):
        range_header = None
    asked: list[ranges.ByteRange] | None = None
    unsatisfiable: ranges.RangeNotSatisfiable | None = None
    if stored is not None and range_header is not None:
        try:
            asked = ranges.parse(range_header, stored.size if mode == "plain" else stored.body_size)
        except ranges.RangeNotSatisfiable as exc:
            unsatisfiable = exc
    byte_range = ranges.describe(asked) if asked else (range_header[:200] if unsatisfiable else None)
    read = Read(object_id=obj["drs_id"], byte_range=byte_range)
    if obj["access_rights"] == "owner":  # a task's released output
        allowed, ticket = await enforcer.authorize_output_url(request, token, obj, read=read)
    else:
        allowed, ticket = await enforcer.authorize_data_url(request, token, object_id=obj["drs_id"],
                                                            dataset_id=obj["dataset_id"], read=read)
    if stored is None or ticket.mode != mode:  # keys rotated between the two verifications: serve it whole
        stored, asked, unsatisfiable = await _open(archive, obj), None, None
    if ticket.mode == "c4gh":
        return _crypt4gh_copy(obj, stored, ticket, allowed, head=head)
    if ticket.mode == "c4gh-body":
        return _ranged(stored.body_size, stored.body_stream, allowed, asked, unsatisfiable, head=head,
                       etag=f'"{obj["sha256"]}.c4gh-body"', content_type=CRYPT4GH_MEDIA_TYPE,
                       filename=f"{obj['filename']}.c4gh-body")
    return _ranged(stored.size, stored.stream, allowed, asked, unsatisfiable, head=head,
                   etag=_etag(obj), content_type=media_type(obj) if obj["format"] else output_media_type(obj["filename"]),
                   filename=obj["filename"])


async def _open(archive: Archive, obj: dict[str, Any]) -> ArchivedObject:
    try:
        return await archive.open(obj["archive_bucket"], obj["archive_key"], obj["encrypted_size"])
    except ArchiveFormatError:
        log.error("the archived object of %s cannot be read", obj["drs_id"])
        raise Problem(500, "archive-object-unreadable", "the archived object cannot be read") from None


def _etag(obj: dict[str, Any]) -> str:
    return f'"{obj["sha256"]}"'


def _if_range_holds(request: Request, obj: dict[str, Any]) -> bool:
    """RFC 9110 §13.1.5: a Range with an ``If-Range`` that is not the current (strong) ETag is ignored."""
    condition = request.headers.get("if-range")
    return condition is None or condition.strip() == _etag(obj)


def _mode_of(enforcer: Enforcer, token: str | None) -> str | None:
    """The mode of a data URL that verifies (the enforcement point verifies it again and decides); else None."""
    if enforcer.visa_keys is None or not token:
        return None
    try:
        return data_urls.verify(enforcer.visa_keys, enforcer.settings, token).mode
    except data_urls.DataUrlError:
        return None


def _common_headers(allowed: Allowed, *, filename: str, length: int) -> dict[str, str]:
    return {**allowed.headers, "Content-Length": str(length), "Content-Disposition": content_disposition(filename),
            "Cache-Control": "private, no-store"}


def _ranged(size: int, read: Callable[[int, int], AsyncIterator[bytes]], allowed: Allowed,
            asked: list[ranges.ByteRange] | None, unsatisfiable: ranges.RangeNotSatisfiable | None, *, head: bool,
            etag: str, content_type: str, filename: str) -> Response:
    base = {"Accept-Ranges": "bytes", "ETag": etag}
    if unsatisfiable is not None:
        raise Problem(416, "range-not-satisfiable", f"no range asked for is within the object's {size} bytes",
                      headers={**allowed.headers, **base, "Content-Range": f"bytes */{size}"})
    if asked is None:
        headers = {**base, **_common_headers(allowed, filename=filename, length=size)}
        if head:
            return Response(status_code=200, headers=headers, media_type=content_type)
        return StreamingResponse(read(0, size), status_code=200, headers=headers, media_type=content_type)
    if len(asked) == 1:
        only = asked[0]
        headers = {**base, **_common_headers(allowed, filename=filename, length=only.length),
                   "Content-Range": only.content_range(size)}
        return StreamingResponse(read(only.start, only.end), status_code=206, headers=headers,
                                 media_type=content_type)
    frames = ranges.multipart_frames(asked, size, content_type, secrets.token_hex(16))
    headers = {**base, **_common_headers(allowed, filename=filename, length=frames.content_length)}
    return StreamingResponse(_multipart(read, asked, frames), status_code=206, headers=headers,
                             media_type=frames.content_type)


async def _multipart(read: Callable[[int, int], AsyncIterator[bytes]], asked: list[ranges.ByteRange],
                     frames: ranges.MultipartFrames) -> AsyncIterator[bytes]:
    for head, part in zip(frames.heads, asked, strict=True):
        yield head
        async for piece in read(part.start, part.end):
            yield piece
    yield frames.closing


def _crypt4gh_copy(obj: dict[str, Any], stored: ArchivedObject, ticket: DataTicket, allowed: Allowed, *,
                   head: bool) -> Response:
    header = stored.header_for(base64.b64decode(ticket.recipient or ""))
    headers = {"Accept-Ranges": "none",
               **_common_headers(allowed, filename=f"{obj['filename']}.c4gh", length=len(header) + stored.body_size)}
    if head:
        return Response(status_code=200, headers=headers, media_type=CRYPT4GH_MEDIA_TYPE)
    return StreamingResponse(_prefixed(header, stored.body_stream()), status_code=200, headers=headers,
                             media_type=CRYPT4GH_MEDIA_TYPE)


async def _prefixed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for piece in rest:
        yield piece
