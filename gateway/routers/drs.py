"""GA4GH Data Repository Service 1.5 under ``/ga4gh/drs/v1``: the archive's files as DRS objects.

Objects
    Every archived file of a released dataset is a blob: its id is the accession (its alias, the
    name it was submitted under, resolves too and is listed in ``aliases``); ``checksums`` are the
    plaintext's ``sha-256`` and ``md5``; ``mime_type`` is its format's (``gateway/media_types.py``);
    ``self_uri`` is ``drs://<gateway host[:port]>/<id>``. Every released dataset is a bundle (the
    spec deprecates bundles but still defines them): id the dataset id, ``contents`` a
    ``ContentsObject`` per file, ``size`` their sum, and ``checksums`` as the spec says for bundles,
    the digest of the sorted concatenation of the members' hex digests (``sha-256`` over their
    SHA-256s, ``md5`` over their MD5s). A bundle holds no nested bundle, so ``expand`` changes
    nothing in it. Objects of a dataset not released (registered, withdrawn) are 404.

    Object metadata is public, as the node's ``/files`` already is: ``GET``/``POST`` of an object
    need no credential, and the passports a ``POST`` may carry are not needed to describe it.

Bytes
    A blob has two access methods, both ``https`` with an ``access_id``: ``https`` (the decrypted
    bytes) and ``c4gh`` (a Crypt4GH copy for the caller's key, given in the
    ``Htsget-Context-Public-Key`` header, ``gateway/reader_keys.py``). ``/access/{access_id}``
    asks the enforcement point (bearer token, or passports in a ``POST``; public datasets need
    neither; every decision audited) and answers a signed data URL (``infra/data_urls.py``) for
    ``/data/objects/{id}``, valid ``data_url_ttl_s``. The URL carries who asked and on which grant,
    and every request made with it is checked again (``gateway/routers/data.py``).

    ``OPTIONS`` answers the ``Authorizations`` the bytes need: ``None`` for a public dataset, else
    ``PassportAuth`` (visa and passport issuers this node trusts, and the node itself, whose
    ``/passport`` issues visas) and ``BearerAuth`` (its login issuers). Each access method carries
    the same ``authorizations``.

Bulk
    ``POST /objects``, ``OPTIONS /objects`` and ``POST /objects/access`` answer per object:
    ``resolved`` ones, and ``unresolved`` ones grouped by error code (404 unknown; for access, also
    400, 401, 403 as the enforcement point decided each, one audited decision per object and access
    id). More ids than ``drs_max_bulk_request_length`` (for access: object and access id pairs) is
    413. ``POST /objects/access`` is matched before ``POST /objects/{object_id}``, so an object
    whose alias is ``access`` is reached by its accession.

``/service-info`` is the node's service-info as ``org.ga4gh:drs:1.5.0`` with the ``drs`` block
(``maxBulkRequestLength``, ``objectCount`` and ``totalObjectSize`` of the released archive).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genomebus.gateway.deps import EnforcerDep, PoolDep, SettingsDep, VisaKeysDep
from genomebus.gateway.enforcement import Allowed, Enforcer, Read
from genomebus.gateway.media_types import media_type, output_media_type
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.reader_keys import CLIENT_PUBLIC_KEY_HEADER, recipient_of
from genomebus.gateway.routers import service_info
from genomebus.infra import data_urls
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.readmodels import airlock, datasets, files
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys

PREFIX = "/ga4gh/drs/v1"
DRS_VERSION = "1.5.0"
ACCESS_MODES: dict[str, Literal["plain", "c4gh"]] = {"https": "plain", "c4gh": "c4gh"}
"""access_id → the data URL's mode."""

router = APIRouter(prefix=PREFIX, tags=["DRS"])

OBJECT_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,200}$"
"""DRS ids' characters (RFC 3986 unreserved): accessions, dataset ids and aliases (``[A-Za-z0-9._-]``) all are."""
ACCESS_ID_PATTERN = r"^[A-Za-z0-9._~-]{1,64}$"
ObjectId = Annotated[str, Field(pattern=OBJECT_ID_PATTERN)]
ObjectPath = Annotated[str, Path(pattern=OBJECT_ID_PATTERN, description="`DrsObject` identifier: "
                                 "an accession, a file's alias, or a dataset id (a bundle)")]
AccessPath = Annotated[str, Path(pattern=ACCESS_ID_PATTERN, description="An `access_id` of the object's "
                                 "`access_methods`: `https` (decrypted bytes) or `c4gh` (a Crypt4GH copy)")]
ExpandQuery = Annotated[bool, Query(description="Expand nested bundles (these bundles hold none)")]
Passport = Annotated[str, Field(min_length=1, max_length=262144)]
Passports = Annotated[list[Passport] | None, Field(
    max_length=10, description="GA4GH passports (or visas) as JWS compact strings")]
MAX_BULK = 10000  # the schema's bound; the node's own (settings.drs_max_bulk_request_length) answers 413


# -- the spec's models ------------------------------------------------------------------------------

class Checksum(BaseModel):
    checksum: str
    type: str


class Authorizations(BaseModel):
    drs_object_id: str | None = None
    supported_types: list[Literal["None", "BasicAuth", "BearerAuth", "PassportAuth"]]
    passport_auth_issuers: list[str] | None = None
    bearer_auth_issuers: list[str] | None = None


class AccessURL(BaseModel):
    url: str
    headers: list[str] | None = None


class AccessMethod(BaseModel):
    type: Literal["s3", "gs", "ftp", "gsiftp", "globus", "htsget", "https", "file"]
    access_url: AccessURL | None = None
    access_id: str | None = None
    cloud: str | None = None
    region: str | None = None
    available: bool | None = None
    authorizations: Authorizations | None = None


class ContentsObject(BaseModel):
    name: str
    id: str | None = None
    drs_uri: list[str] | None = None
    contents: list[ContentsObject] | None = None


class DrsObject(BaseModel):
    id: str
    name: str | None = None
    self_uri: str
    size: int
    created_time: datetime
    updated_time: datetime | None = None
    version: str | None = None
    mime_type: str | None = None
    checksums: Annotated[list[Checksum], Field(min_length=1)]
    access_methods: Annotated[list[AccessMethod] | None, Field(min_length=1)] = None
    contents: list[ContentsObject] | None = None
    description: str | None = None
    aliases: list[str] | None = None


class Summary(BaseModel):
    requested: int
    resolved: int
    unresolved: int


class Unresolved(BaseModel):
    error_code: int
    object_ids: list[str]


class BulkObjects(BaseModel):
    summary: Summary
    unresolved_drs_objects: list[Unresolved]
    resolved_drs_object: list[DrsObject]


class BulkAuthorizations(BaseModel):
    summary: Summary
    unresolved_drs_objects: list[Unresolved]
    resolved_drs_object: list[Authorizations]


class BulkAccessURL(BaseModel):
    drs_object_id: str
    drs_access_id: str
    url: str
    headers: list[str] | None = None


class BulkAccessURLs(BaseModel):
    summary: Summary
    unresolved_drs_objects: list[Unresolved]
    resolved_drs_object_access_urls: list[BulkAccessURL]


class DrsBlock(BaseModel):
    maxBulkRequestLength: int  # noqa: N815 - the spec's names
    objectCount: int  # noqa: N815
    totalObjectSize: int  # noqa: N815


class DrsServiceInfo(service_info.Service):
    maxBulkRequestLength: int  # noqa: N815 - deprecated at the root by 1.5, still required there
    drs: DrsBlock


# -- request bodies ---------------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostObjectBody(_Body):
    expand: bool = False
    passports: Passports = None


class PassportsBody(_Body):
    passports: Passports = None


class BulkObjectIds(_Body):
    passports: Passports = None
    bulk_object_ids: Annotated[list[ObjectId], Field(min_length=1, max_length=MAX_BULK)]


class BulkObjectIdsNoPassport(_Body):
    bulk_object_ids: Annotated[list[ObjectId], Field(min_length=1, max_length=MAX_BULK)]


class BulkObjectAccess(_Body):
    bulk_object_id: ObjectId
    bulk_access_ids: Annotated[list[Annotated[str, Field(pattern=ACCESS_ID_PATTERN)]],
                               Field(min_length=1, max_length=len(ACCESS_MODES) * 4)]


class BulkAccessBody(_Body):
    passports: Passports = None
    bulk_object_access_ids: Annotated[list[BulkObjectAccess], Field(min_length=1, max_length=MAX_BULK)]


# -- objects ----------------------------------------------------------------------------------------

def drs_host(settings: Settings) -> str:
    return urlsplit(settings.gateway_url).netloc


def drs_uri(settings: Settings, object_id: str) -> str:
    return f"drs://{drs_host(settings)}/{object_id}"


def authorizations(settings: Settings, object_id: str, access_rights: str) -> Authorizations:
    """What reading the object's bytes needs: nothing for public data, else a passport or a login."""
    if access_rights == "public":
        return Authorizations(drs_object_id=object_id, supported_types=["None"])
    issuers = settings.issuers()
    if access_rights == "owner":  # a task's released output: its owner's login, nothing else
        return Authorizations(drs_object_id=object_id, supported_types=["BearerAuth"],
                              bearer_auth_issuers=[i.issuer for i in issuers if "login" in i.kinds])
    passport_issuers = [i.issuer for i in issuers if {"visa", "passport"} & set(i.kinds)]
    return Authorizations(
        drs_object_id=object_id, supported_types=["PassportAuth", "BearerAuth"],
        passport_auth_issuers=[*passport_issuers, settings.gateway_url],
        bearer_auth_issuers=[i.issuer for i in issuers if "login" in i.kinds])


def blob(settings: Settings, obj: dict[str, Any]) -> DrsObject:
    """An archived file as a DRS blob."""
    auth = authorizations(settings, obj["drs_id"], obj["access_rights"])
    return DrsObject(
        id=obj["drs_id"], name=obj["filename"], self_uri=drs_uri(settings, obj["drs_id"]), size=obj["size"],
        created_time=obj["uploaded_at"], updated_time=obj["updated_at"], mime_type=media_type(obj),
        checksums=[Checksum(checksum=obj["sha256"], type="sha-256"), Checksum(checksum=obj["md5"], type="md5")],
        access_methods=[AccessMethod(type="https", access_id=access_id, available=True, authorizations=auth)
                        for access_id in ACCESS_MODES],
        description=f"{obj['format']} file of dataset {obj['dataset_id']}",
        aliases=[obj["alias"]] if obj.get("alias") else None)


def output_blob(settings: Settings, obj: dict[str, Any]) -> DrsObject:
    """A task's released output as a DRS blob (its bytes for its owner alone)."""
    auth = authorizations(settings, obj["drs_id"], "owner")
    return DrsObject(
        id=obj["drs_id"], name=obj["filename"], self_uri=drs_uri(settings, obj["drs_id"]), size=obj["size"],
        created_time=obj["uploaded_at"], updated_time=obj["updated_at"], mime_type=output_media_type(obj["filename"]),
        checksums=[Checksum(checksum=obj["sha256"], type="sha-256")],
        access_methods=[AccessMethod(type="https", access_id=access_id, available=True, authorizations=auth)
                        for access_id in ACCESS_MODES],
        description=f"output {obj['path']} of task {obj['dataset_id']}, released by the airlock")


def bundle_checksum(digests: list[str], algorithm: str) -> str:
    """DRS's bundle checksum: the digest of the members' hex digests, sorted and concatenated."""
    return hashlib.new(algorithm, "".join(sorted(digests)).encode("ascii")).hexdigest()


def bundle(settings: Settings, dataset: dict[str, Any], members: list[dict[str, Any]]) -> DrsObject:
    """A released dataset as a DRS bundle of its files (each listed once, under a name unique in it)."""
    seen: dict[str, int] = defaultdict(int)
    for m in members:
        seen[m["filename"]] += 1
    contents = [ContentsObject(name=m["filename"] if seen[m["filename"]] == 1 else f"{m['drs_id']}_{m['filename']}",
                               id=m["drs_id"], drs_uri=[drs_uri(settings, m["drs_id"])]) for m in members]
    return DrsObject(
        id=dataset["id"], name=dataset["id"], self_uri=drs_uri(settings, dataset["id"]),
        size=sum(m["size"] for m in members), created_time=dataset["released_at"] or dataset["registered_at"],
        updated_time=dataset["updated_at"],
        checksums=[Checksum(checksum=bundle_checksum([m["sha256"] for m in members], "sha256"), type="sha-256"),
                   Checksum(checksum=bundle_checksum([m["md5"] for m in members], "md5"), type="md5")],
        contents=contents, description=dataset["title"])


async def _find(conn: Any, settings: Settings, object_id: str) -> tuple[DrsObject, str] | None:
    """The released object (blob or bundle) ``object_id`` names, and its dataset's access rights."""
    obj = await files.drs_object(conn, object_id)
    if obj is not None:
        return (blob(settings, obj), obj["access_rights"]) if obj["dataset_state"] == "released" else None
    output = await airlock.released_object(conn, object_id)
    if output is not None:
        return output_blob(settings, output), "owner"
    dataset = await datasets.get_dataset(conn, object_id)
    if dataset is None or dataset["state"] != "released":
        return None
    return bundle(settings, dataset, await files.dataset_objects(conn, object_id)), dataset["access_rights"]


async def _find_each(pool: Any, settings: Settings, object_ids: list[str]
                     ) -> tuple[list[tuple[DrsObject, str]], dict[int, list[str]]]:
    """``_find`` for each id of a bulk request: what was found, in order, and the ids that were not (under 404)."""
    found: list[tuple[DrsObject, str]] = []
    unresolved: dict[int, list[str]] = defaultdict(list)
    async with pool.acquire() as conn:
        for object_id in object_ids:
            hit = await _find(conn, settings, object_id)
            if hit is None:
                unresolved[404].append(object_id)
            else:
                found.append(hit)
    return found, unresolved


def _not_found(object_id: str) -> Problem:
    return Problem(404, "object-not-found", f"this node serves no DRS object {object_id}")


async def _object(pool: Any, settings: Settings, object_id: str) -> DrsObject:
    async with pool.acquire() as conn:
        found = await _find(conn, settings, object_id)
    if found is None:
        raise _not_found(object_id)
    return found[0]


def _json(model: BaseModel, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", exclude_none=True), headers=headers)


_AUDITED = {"X-Audit-Event": {"description": "Id of the audit event recording this decision",
                              "schema": {"type": "string", "format": "uuid"}}}
_KEY_HEADER = {"name": CLIENT_PUBLIC_KEY_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
               "description": "For `access_id` `c4gh`: the reader's Crypt4GH public key, base64 of the "
                              "`crypt4gh keygen` .pub file (or of the raw 32-byte key)"}
_OBJECT = dict(response_model=DrsObject, response_model_exclude_none=True,
               responses=problem_responses(400, 404, 500, 503))
_ACCESS = dict(response_model=AccessURL, response_model_exclude_none=True,
               responses={200: {"description": "A signed URL for the bytes", "headers": _AUDITED},
                          **problem_responses(400, 401, 403, 404, 500, 503)},
               openapi_extra={"parameters": [_KEY_HEADER]})
# 500 named here, not left to problems.document_problems: its default 500 is one dict shared by every
# operation, and rewriting it to the DRS error shape would rewrite it for the whole gateway.
_BULK = problem_responses(400, 413, 500, 503)


@router.get("/service-info", response_model=DrsServiceInfo, response_model_exclude_none=True,
            responses=problem_responses(500, 503))
async def drs_service_info(settings: SettingsDep, pool: PoolDep) -> JSONResponse:
    """The node's service-info as a DRS 1.5 service, with the size of what it serves."""
    node = await service_info.service_info(settings)
    async with pool.acquire() as conn:
        count, total = await files.object_totals(conn)
    info = DrsServiceInfo(**{
        **node.model_dump(), "id": f"{node.id}.drs", "name": f"{node.name} DRS",
        "type": service_info.ServiceType(group="org.ga4gh", artifact="drs", version=DRS_VERSION),
        "description": "GA4GH DRS over the node's archive: files of released datasets, their bytes through "
                       "signed URLs after the node's access check"},
        maxBulkRequestLength=settings.drs_max_bulk_request_length,
        drs=DrsBlock(maxBulkRequestLength=settings.drs_max_bulk_request_length, objectCount=count,
                     totalObjectSize=total))
    return _json(info)


# Registered before /objects/{object_id}: POST /objects/access is the bulk access, not an object named "access".
@router.post("/objects/access", response_model=BulkAccessURLs, response_model_exclude_none=True,
             responses=_BULK, openapi_extra={"parameters": [_KEY_HEADER]})
async def bulk_access(request: Request, body: Annotated[BulkAccessBody, Body()], settings: SettingsDep,
                      pool: PoolDep, enforcer: EnforcerDep, visa_keys: VisaKeysDep) -> JSONResponse:
    """Signed URLs for several objects' bytes: each object and access id decided (and audited) on its own."""
    pairs = [(item.bulk_object_id, access_id) for item in body.bulk_object_access_ids
             for access_id in item.bulk_access_ids]
    _bound(settings, len(pairs))
    resolved: list[BulkAccessURL] = []
    unresolved: dict[int, list[str]] = defaultdict(list)
    for object_id, access_id in pairs:
        try:
            url, _ = await _access_url(request, object_id, access_id, body.passports, settings=settings, pool=pool,
                                       enforcer=enforcer, visa_keys=visa_keys)
        except Problem as problem:
            if problem.status >= 500:
                raise
            unresolved[problem.status].append(object_id)
            continue
        resolved.append(BulkAccessURL(drs_object_id=object_id, drs_access_id=access_id, url=url.url))
    return _json(BulkAccessURLs(summary=_summary(len(pairs), len(resolved)),
                                unresolved_drs_objects=_grouped(unresolved),
                                resolved_drs_object_access_urls=resolved))


@router.post("/objects", response_model=BulkObjects, response_model_exclude_none=True, responses=_BULK)
async def bulk_objects(body: Annotated[BulkObjectIds, Body()], settings: SettingsDep, pool: PoolDep,
                       expand: ExpandQuery = False) -> JSONResponse:
    """Several objects' metadata (``expand`` is accepted: these bundles hold no nested bundle)."""
    _bound(settings, len(body.bulk_object_ids))
    found, unresolved = await _find_each(pool, settings, body.bulk_object_ids)
    resolved = [obj for obj, _ in found]
    return _json(BulkObjects(summary=_summary(len(body.bulk_object_ids), len(resolved)),
                             unresolved_drs_objects=_grouped(unresolved), resolved_drs_object=resolved))


@router.options("/objects", response_model=BulkAuthorizations, response_model_exclude_none=True,
                responses=_BULK)
async def bulk_authorizations(body: Annotated[BulkObjectIdsNoPassport, Body()], settings: SettingsDep,
                              pool: PoolDep) -> JSONResponse:
    """How to authorize access to several objects' bytes."""
    _bound(settings, len(body.bulk_object_ids))
    found, unresolved = await _find_each(pool, settings, body.bulk_object_ids)
    resolved = [authorizations(settings, obj.id, access_rights) for obj, access_rights in found]
    return _json(BulkAuthorizations(summary=_summary(len(body.bulk_object_ids), len(resolved)),
                                    unresolved_drs_objects=_grouped(unresolved), resolved_drs_object=resolved))


@router.get("/objects/{object_id}", **_OBJECT)
async def get_object(object_id: ObjectPath, settings: SettingsDep, pool: PoolDep,
                     expand: ExpandQuery = False) -> JSONResponse:
    """An object's metadata and access methods (public: no credential needed)."""
    return _json(await _object(pool, settings, object_id))


@router.post("/objects/{object_id}", **_OBJECT)
async def post_object(object_id: ObjectPath, body: Annotated[PostObjectBody, Body()], settings: SettingsDep,
                      pool: PoolDep) -> JSONResponse:
    """The same metadata; passports are accepted and not needed (only the bytes are controlled)."""
    return _json(await _object(pool, settings, object_id))


@router.options("/objects/{object_id}", response_model=Authorizations, response_model_exclude_none=True,
                responses=problem_responses(400, 404, 500, 503))
async def object_authorizations(object_id: ObjectPath, settings: SettingsDep, pool: PoolDep) -> JSONResponse:
    """How to authorize access to the object's bytes: which credentials, from which issuers."""
    async with pool.acquire() as conn:
        found = await _find(conn, settings, object_id)
    if found is None:
        raise _not_found(object_id)
    return _json(authorizations(settings, found[0].id, found[1]))


@router.get("/objects/{object_id}/access/{access_id}", **_ACCESS)
async def get_access_url(request: Request, object_id: ObjectPath, access_id: AccessPath, settings: SettingsDep,
                         pool: PoolDep, enforcer: EnforcerDep, visa_keys: VisaKeysDep) -> JSONResponse:
    """A signed URL for the object's bytes, for a bearer token whose user holds a grant (or public data)."""
    url, allowed = await _access_url(request, object_id, access_id, None, settings=settings, pool=pool,
                                     enforcer=enforcer, visa_keys=visa_keys)
    return _json(url, allowed.headers)


@router.post("/objects/{object_id}/access/{access_id}", **_ACCESS)
async def post_access_url(request: Request, object_id: ObjectPath, access_id: AccessPath,
                          body: Annotated[PassportsBody, Body()], settings: SettingsDep, pool: PoolDep,
                          enforcer: EnforcerDep, visa_keys: VisaKeysDep) -> JSONResponse:
    """A signed URL for the object's bytes, for passports with a visa for its dataset (or a bearer token)."""
    url, allowed = await _access_url(request, object_id, access_id, body.passports, settings=settings, pool=pool,
                                     enforcer=enforcer, visa_keys=visa_keys)
    return _json(url, allowed.headers)


# -- access ---------------------------------------------------------------------------------------

async def _access_url(request: Request, object_id: str, access_id: str, passports: list[str] | None, *,
                      settings: Settings, pool: Any, enforcer: Enforcer, visa_keys: VisaKeys
                      ) -> tuple[AccessURL, Allowed]:
    """Decide (and audit) one access to one object's bytes; the signed URL that serves them."""
    async with pool.acquire() as conn:
        obj = await files.drs_object(conn, object_id) or await airlock.released_object(conn, object_id)
    if obj is None:  # an unknown id, or a bundle: bundles have no access methods
        raise Problem(404, "object-not-found", f"this node serves no DRS blob {object_id}")
    mode = ACCESS_MODES.get(access_id)
    if mode is None:
        raise Problem(404, "access-not-found", f"object {object_id} has no access method {access_id!r}; "
                      f"its access ids are {', '.join(ACCESS_MODES)}")
    recipient = recipient_of(request.headers) if mode == "c4gh" else None
    if obj["access_rights"] == "owner":  # a task's released output: its owner's bearer token alone
        allowed = await enforcer.authorize_output(request, obj, read=Read(object_id=obj["drs_id"]))
    else:  # a dataset no longer released is the enforcement point's (audited) 404
        allowed = await enforcer.authorize(request, obj["dataset_id"], passports=passports or None,
                                           read=Read(object_id=obj["drs_id"]))
    ticket = DataTicket(object_id=obj["drs_id"], dataset_id=obj["dataset_id"], mode=mode, user_id=allowed.user_id,
                        grant_id=allowed.grant_id, credential=allowed.credential,
                        issuer=allowed.issuer, recipient=recipient)
    return AccessURL(url=data_urls.url_for(visa_keys, settings, ticket)), allowed


# -- bulk -----------------------------------------------------------------------------------------

def _bound(settings: Settings, n: int) -> None:
    if n > settings.drs_max_bulk_request_length:
        raise Problem(413, "bulk-request-too-large", f"{n} ids in one request; this node answers at most "
                      f"{settings.drs_max_bulk_request_length} (its service-info's maxBulkRequestLength)")


def _summary(requested: int, resolved: int) -> Summary:
    return Summary(requested=requested, resolved=resolved, unresolved=requested - resolved)


def _grouped(unresolved: dict[int, list[str]]) -> list[Unresolved]:
    return [Unresolved(error_code=code, object_ids=ids) for code, ids in sorted(unresolved.items())]
