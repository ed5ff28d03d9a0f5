"""GA4GH htsget 1.3 under ``/htsget/v1``: tickets for slices of archived BAM, CRAM, VCF and BCF files.

``GET``/``POST /reads/{id}`` and ``/variants/{id}`` (an id is the DRS id, i.e. the accession, or
the alias the file was submitted with) answer a ticket: URLs that, fetched in order with their
headers and concatenated, are a file of the object's own format holding the header, every record
overlapping the regions asked for (records stay whole; more may come, as htsget allows) and the
EOF marker. The steps:

1. the request is checked (``gateway/htsget_tickets.py``: htsget's rules and error names);
2. the object is found; unknown, or of the other endpoint's kind (a VCF under ``/reads``) → NotFound;
3. the enforcement point decides and audits the read, naming the object and the region
   (no token 401, no grant 403, withdrawn 404; public datasets need no token);
4. a format other than the object's own → UnsupportedFormat (this node does not convert);
5. ``infra.hts`` plans the byte ranges from the decrypted header and index;
6. each range becomes a URL: an inline ``data:`` URI (bytes the planner made, or a header up to
   ``settings.htsget_inline_max_bytes``) or a signed data URL (``/data/objects/{id}?sig=``) with a
   ``Range`` header; the data endpoint checks the grant again and audits each range it serves.

The Crypt4GH extension (as htsget-rs names it): ``encryptionScheme=C4GH`` (GET query or POST
body) with the reader's public key in the ``Htsget-Context-Public-Key`` header. The ticket then
hands out the stored ciphertext: a ``data:`` URI with a Crypt4GH header for the reader's key whose
edit list keeps exactly the planned plaintext ranges, then the cipher segments that hold them
(each once, as ``c4gh-body`` data URLs with ``Range`` headers over the stored body). Decrypted
with the reader's secret key, the concatenation is the same file a plain ticket gives, less the
few bytes a plain ticket re-compresses (the planner is asked for stored ranges only). Its URLs
carry no ``class``: a segment may hold header and records both.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genomebus.gateway import htsget_tickets as tickets
from genomebus.gateway.deps import ArchiveDep, EnforcerDep, PoolDep, SettingsDep, VisaKeysDep
from genomebus.gateway.enforcement import Allowed, Enforcer, Read
from genomebus.gateway.htsget_tickets import TicketRequest
from genomebus.gateway.media_types import CRYPT4GH_MEDIA_TYPE, MEDIA_TYPES
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import service_info
from genomebus.infra import data_urls
from genomebus.infra.archive_store import Archive, ArchivedObject
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.hts import FORMATS, Block, HtsError, HtsFile, Query as HtsQuery, open_file
from genomebus.infra.readmodels import files
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys

router = APIRouter(prefix="/htsget/v1", tags=["htsget"])
T = TypeVar("T")

_STATUS = {"InvalidInput": 400, "InvalidRange": 400, "UnsupportedFormat": 400, "NotFound": 404}
_CODES = {"InvalidInput": "invalid-input", "InvalidRange": "invalid-range", "UnsupportedFormat": "unsupported-format",
          "NotFound": "not-found"}
_OPEN_FILES = 64
_MAX_ID = 200


# -- service-info ------------------------------------------------------------------------------------------------------


class HtsgetCapabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datatype: Literal["reads", "variants"] | None = Field(
        None, description="reads or variants: the ticket endpoint this describes (none: both)")
    formats: list[str] = Field(description="The formats a ticket can be in (each object in its own)")
    fieldsParameterEffective: bool = Field(  # noqa: N815 - the spec's names
        False, description="False: `fields` is checked but whole records are returned")
    tagsParametersEffective: bool = Field(  # noqa: N815
        False, description="False: `tags` and `notags` are checked but whole records are returned")


class HtsgetService(service_info.Service):
    htsget: HtsgetCapabilities


async def _service(settings: Settings, datatype: Literal["reads", "variants"] | None) -> HtsgetService:
    """The node's service-info, as the htsget API (``datatype`` None: both endpoints) describes itself."""
    node = await service_info.service_info(settings)
    formats = list(FORMATS[datatype]) if datatype else [f for kind in FORMATS.values() for f in kind]
    return HtsgetService(
        **node.model_dump(exclude={"id", "name", "type", "description"}),
        id=f"{node.id}.htsget" + (f"-{datatype}" if datatype else ""),
        name=f"{node.name} htsget" + (f" {datatype}" if datatype else ""),
        type=service_info.ServiceType(group="org.ga4gh", artifact="htsget", version=tickets.HTSGET_VERSION),
        description=f"htsget {tickets.HTSGET_VERSION} tickets for slices of archived {', '.join(formats)} files, each "
                    f"in its own format, records whole; Crypt4GH tickets with {tickets.ENCRYPTION_SCHEME}=C4GH and "
                    f"the reader's key in the {tickets.PUBLIC_KEY_HEADER} header.",
        htsget=HtsgetCapabilities(datatype=datatype, formats=formats))


# Every htsget route names its own 500, so problems.py rewrites this router's error documents in fresh
# dicts: the default it would otherwise add is one dict shared by every route of the gateway.
_SERVICE = {"response_model": HtsgetService, "response_model_exclude_none": True,
            "responses": problem_responses(500)}


@router.get("/service-info", **_SERVICE)
async def htsget_service_info(settings: SettingsDep) -> HtsgetService:
    """GA4GH service-info of this node's htsget API (both endpoints)."""
    return await _service(settings, None)


@router.get("/reads/service-info", **_SERVICE)
async def reads_service_info(settings: SettingsDep) -> HtsgetService:
    """GA4GH service-info of the reads endpoint."""
    return await _service(settings, "reads")


@router.get("/variants/service-info", **_SERVICE)
async def variants_service_info(settings: SettingsDep) -> HtsgetService:
    """GA4GH service-info of the variants endpoint."""
    return await _service(settings, "variants")


# -- tickets -----------------------------------------------------------------------------------------------------------


class TicketUrl(BaseModel):
    url: str
    headers: dict[str, str] | None = None
    class_: Literal["header", "body"] | None = Field(None, alias="class")


class Ticket(BaseModel):
    format: str
    urls: list[TicketUrl]
    md5: str | None = None


class TicketBody(BaseModel):
    """An htsget ticket (``application/vnd.ga4gh.htsget.v1.3.0+json``)."""

    htsget: Ticket


class TicketResponse(JSONResponse):
    media_type = tickets.TICKET_MEDIA_TYPE


_AUDITED = {"X-Audit-Event": {"description": "Id of the audit event recording this access",
                              "schema": {"type": "string", "format": "uuid"}}}
_TICKET_DOC = {200: {"description": "A ticket: fetch its URLs in order (with their headers) and concatenate them",
                     "headers": _AUDITED}}
_GET_RESPONSES = {**_TICKET_DOC, **problem_responses(400, 401, 403, 404, 500, 503)}
_POST_RESPONSES = {**_TICKET_DOC, **problem_responses(400, 401, 403, 404, 413, 500, 503)}
_C4GH_DOC = (f"Crypt4GH: `{tickets.ENCRYPTION_SCHEME}=C4GH` with the reader's public key in the "
             f"`{tickets.PUBLIC_KEY_HEADER}` header (base64 of the key file, as htsget-rs) gives a ticket whose "
             "concatenation is Crypt4GH for that key.")
_WHOLE = ("Records are served whole: `fields`, `tags` and `notags` are checked (unknown field names, tags "
          "meeting notags: InvalidInput) but do not filter, as htsget allows.")

ReadsFormat = Annotated[str | None, Query(description="BAM or CRAM: the object's own (default: the object's format)",
                                          json_schema_extra={"enum": list(FORMATS["reads"])})]
VariantsFormat = Annotated[str | None, Query(description="VCF or BCF: the object's own (default: the object's "
                                             "format)", json_schema_extra={"enum": list(FORMATS["variants"])})]
Class = Annotated[str | None, Query(alias="class", description="`header`: the header only",
                                    json_schema_extra={"enum": ["header"]})]
ReferenceName = Annotated[str | None, Query(alias="referenceName", description="Reference name; `*`: unplaced "
                                            "unmapped reads (reads only)")]
Start = Annotated[int | None, Query(ge=0, le=tickets.MAX_GET_POSITION, description="0-based, inclusive")]
End = Annotated[int | None, Query(ge=0, le=tickets.MAX_GET_POSITION, description="0-based, exclusive")]
Fields = Annotated[list[str] | None, Query(description=f"SAM fields ({', '.join(tickets.READ_FIELDS)}), "
                                           "comma-separated or repeated")]
Tags = Annotated[list[str] | None, Query(description="Tags to include, comma-separated or repeated; empty: none")]
NoTags = Annotated[list[str] | None, Query(description="Tags to exclude, comma-separated or repeated")]
Encryption = Annotated[str | None, Query(alias=tickets.ENCRYPTION_SCHEME, description="`C4GH`: a Crypt4GH ticket",
                                         json_schema_extra={"enum": [tickets.C4GH]})]
PublicKey = Annotated[str | None, Header(alias=tickets.PUBLIC_KEY_HEADER, description="With `encryptionScheme=C4GH`: "
                                         "the reader's Crypt4GH public key, base64 of the `crypt4gh keygen` .pub "
                                         "file (or of the raw 32-byte key)")]


def _post_body_schema(endpoint: tickets.Endpoint) -> dict[str, Any]:
    """The htsget 1.3 request body (RequestBodyReads / RequestBodyVariants), with the Crypt4GH extension."""
    position = {"type": "integer", "format": "int64", "minimum": 0, "maximum": tickets.MAX_POST_POSITION}
    region = {"type": "object", "required": ["referenceName"],
              "properties": {"referenceName": {"type": "string"}, "start": position, "end": position}}
    properties: dict[str, Any] = {
        "format": {"type": "string", "enum": list(FORMATS[endpoint])},
        "class": {"type": "string", "enum": ["header"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "notags": {"type": "array", "items": {"type": "string"}},
        "regions": {"type": "array", "minItems": 1, "items": region},  # more than MAX_REGIONS: 413
        tickets.ENCRYPTION_SCHEME: {"type": "string", "enum": [tickets.C4GH]},
    }
    if endpoint == "reads":
        properties["fields"] = {"type": "array", "items": {"type": "string", "enum": list(tickets.READ_FIELDS)}}
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties}}}}}


def _doc(what: str) -> str:
    return f"An htsget ticket for {what} of one object (its DRS id or its submission alias). {_WHOLE} {_C4GH_DOC}"


_TICKET = {"response_model": TicketBody, "response_class": TicketResponse, "response_model_exclude_none": True}


@dataclass(frozen=True)
class _Services:
    settings: Settings
    pool: Any
    enforcer: Enforcer
    archive: Archive
    visa_keys: VisaKeys


def _services(settings: SettingsDep, pool: PoolDep, enforcer: EnforcerDep, archive: ArchiveDep,
              visa_keys: VisaKeysDep) -> _Services:
    return _Services(settings, pool, enforcer, archive, visa_keys)


Services = Annotated[_Services, Depends(_services)]


@router.get("/reads/{id}", responses=_GET_RESPONSES, description=_doc("reads"), **_TICKET)
async def reads_ticket(request: Request, id: str, services: Services, format: ReadsFormat = None,  # noqa: A002
                       klass: Class = None, reference_name: ReferenceName = None, start: Start = None,
                       end: End = None, fields: Fields = None, tags: Tags = None, notags: NoTags = None,
                       encryption_scheme: Encryption = None, public_key: PublicKey = None) -> JSONResponse:
    asked = _checked(lambda: tickets.from_get(
        "reads", format=format, klass=klass, reference_name=reference_name, start=start, end=end, fields=fields,
        tags=tags, notags=notags, encryption_scheme=encryption_scheme))
    return await _ticket(request, id, asked, public_key, services)


@router.get("/variants/{id}", responses=_GET_RESPONSES, description=_doc("variants"), **_TICKET)
async def variants_ticket(request: Request, id: str, services: Services, format: VariantsFormat = None,  # noqa: A002
                          klass: Class = None, reference_name: ReferenceName = None, start: Start = None,
                          end: End = None, tags: Tags = None, notags: NoTags = None,
                          encryption_scheme: Encryption = None, public_key: PublicKey = None) -> JSONResponse:
    asked = _checked(lambda: tickets.from_get(
        "variants", format=format, klass=klass, reference_name=reference_name, start=start, end=end, tags=tags,
        notags=notags, encryption_scheme=encryption_scheme))
    return await _ticket(request, id, asked, public_key, services)


@router.post("/reads/{id}", responses=_POST_RESPONSES, openapi_extra=_post_body_schema("reads"),
             description=_doc("reads, of one or more regions,"), **_TICKET)
async def reads_ticket_by_post(request: Request, id: str, services: Services,  # noqa: A002
                      public_key: PublicKey = None) -> JSONResponse:
    body = await _json_body(request)
    return await _ticket(request, id, _checked(lambda: tickets.from_post("reads", body)), public_key, services)


@router.post("/variants/{id}", responses=_POST_RESPONSES, openapi_extra=_post_body_schema("variants"),
             description=_doc("variants, of one or more regions,"), **_TICKET)
async def variants_ticket_by_post(request: Request, id: str, services: Services,  # noqa: A002
                      public_key: PublicKey = None) -> JSONResponse:
    body = await _json_body(request)
    return await _ticket(request, id, _checked(lambda: tickets.from_post("variants", body)), public_key, services)


def _problem(exc: HtsError) -> Problem:
    return Problem(_STATUS.get(exc.error, 400), _CODES.get(exc.error, "invalid-input"), exc.message,
                   htsget_error=exc.error)


def _checked(parse: Callable[[], T]) -> T:
    """``parse()``, its ``HtsError`` answered as htsget's error."""
    try:
        return parse()
    except HtsError as exc:
        raise _problem(exc) from None


async def _json_body(request: Request) -> Any:
    """The POST body as JSON (None when empty), refused when too large (413) or with query parameters (htsget 1.3)."""
    if request.query_params:
        raise _problem(tickets.invalid("a POST request takes its parameters in the JSON body, not the query "
                                       f"(got {', '.join(sorted(request.query_params))})"))
    too_large = Problem(413, "payload-too-large", f"the request body is larger than {tickets.MAX_POST_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > tickets.MAX_POST_BYTES:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > tickets.MAX_POST_BYTES:
            raise too_large
    if not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _problem(tickets.invalid("the request body is not JSON")) from None
    regions = body.get("regions") if isinstance(body, dict) else None
    if isinstance(regions, list) and len(regions) > tickets.MAX_REGIONS:
        raise Problem(413, "payload-too-large", f"a request may name at most {tickets.MAX_REGIONS} regions")
    return body


async def _ticket(request: Request, object_id: str, asked: TicketRequest, public_key: str | None,
                  services: _Services) -> JSONResponse:
    recipient = _checked(lambda: tickets.client_public_key(public_key)) if asked.c4gh else None
    row = None
    if len(object_id) <= _MAX_ID:
        async with services.pool.acquire() as conn:
            row = await files.drs_object(conn, object_id)
    if row is None or row["format"] not in FORMATS[asked.endpoint]:
        raise Problem(404, "not-found", f"no {asked.endpoint} object {object_id!r} on this node",
                      htsget_error="NotFound")
    allowed = await services.enforcer.authorize(request, row["dataset_id"], read=Read(
        object_id=row["drs_id"], region=tickets.audit_region(asked)))
    fmt = row["format"]
    if asked.format is not None and asked.format != fmt:
        raise _problem(HtsError("UnsupportedFormat", f"{row['drs_id']} is {fmt}: this node serves each object in its "
                                                     f"own format and does not convert it to {asked.format}"))
    hts_file = await _open(request, services.archive, row)
    try:
        blocks = await hts_file.plan(HtsQuery(fmt, header_only=asked.header_only, regions=asked.regions,
                                              exact=not asked.c4gh))
    except HtsError as exc:
        raise _problem(exc) from None
    data_ticket = DataTicket(object_id=row["drs_id"], dataset_id=row["dataset_id"], user_id=allowed.user_id,
                             grant_id=allowed.grant_id, credential=allowed.credential,
                             issuer=allowed.issuer)
    # One signed URL for the whole ticket: its URLs differ by their Range header only.
    if recipient is None:
        url = data_urls.url_for(services.visa_keys, services.settings, data_ticket)
        urls = await plain_urls(hts_file.obj, blocks, fmt, services.settings.htsget_inline_max_bytes, url)
    else:
        url = data_urls.url_for(services.visa_keys, services.settings, replace(
            data_ticket, mode="c4gh-body", recipient=base64.b64encode(recipient).decode("ascii")))
        urls = c4gh_urls(hts_file.obj, blocks, recipient, url)
    return TicketResponse({"htsget": {"format": fmt, "urls": urls}}, headers=_headers(allowed))


def _headers(allowed: Allowed) -> dict[str, str]:
    # A ticket's URLs are credentials for a few minutes: no cache keeps them.
    return {**allowed.headers, "Cache-Control": "no-store"}


async def _open(request: Request, archive: Archive, row: dict[str, Any]) -> HtsFile:
    """The object with its header read and index parsed, kept per gateway (archive objects never change)."""
    cache: OrderedDict[str, HtsFile] = getattr(request.app.state, "htsget_files", None) or OrderedDict()
    request.app.state.htsget_files = cache
    key = f"{row['archive_bucket']}/{row['archive_key']}"
    if (found := cache.get(key)) is not None:
        cache.move_to_end(key)
        return found
    obj = await archive.open(row["archive_bucket"], row["archive_key"], row["encrypted_size"])
    index = await archive.index(row["archive_bucket"], row["index_key"]) if row["index_key"] else None
    opened = await open_file(obj, index, row["format"])
    cache[key] = opened
    while len(cache) > _OPEN_FILES:
        cache.popitem(last=False)
    return opened


# -- the URLs of a ticket ----------------------------------------------------------------------------------------------


async def plain_urls(obj: Any, blocks: list[Block], fmt: str, inline_max: int, data_url: str) -> list[dict[str, Any]]:
    """A plain ticket's URLs: bytes the planner made and small headers inline, the rest as ranged data URLs."""
    media_type = MEDIA_TYPES[fmt]
    urls: list[dict[str, Any]] = []
    for block in blocks:
        if block.data is not None:
            urls.append({"url": tickets.data_uri(media_type, block.data), "class": block.klass})
        elif block.klass == "header" and block.end - block.start <= inline_max:
            urls.append({"url": tickets.data_uri(media_type, await obj.read(block.start, block.end)),
                         "class": block.klass})
        else:
            urls += [{"url": data_url, "headers": tickets.range_header(a, b), "class": block.klass}
                     for a, b in tickets.split_range(block.start, block.end)]
    return urls


def c4gh_urls(obj: ArchivedObject, blocks: list[Block], recipient: bytes, data_url: str) -> list[dict[str, Any]]:
    """A Crypt4GH ticket's URLs: a header for the reader's key with the edit list, then the segments' ciphertext."""
    if any(block.data is not None for block in blocks):
        raise ValueError("a Crypt4GH ticket can only send stored bytes")  # the planner was asked for exact=False
    selection = tickets.c4gh_selection((block.start, block.end) for block in blocks)
    header = obj.header_for(recipient, list(selection.edit_list))
    return [{"url": tickets.data_uri(CRYPT4GH_MEDIA_TYPE, header)}] + [
        {"url": data_url, "headers": tickets.range_header(a, b)} for a, b in selection.body_ranges(obj.body_size)]
