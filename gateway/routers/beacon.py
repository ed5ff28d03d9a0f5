"""GA4GH Beacon v2 under ``/beacon/v2``: discovery over the released datasets, answered by authorisation.

Framework endpoints
    ``/`` and ``/info`` (``beaconInfoResponse``), ``/service-info`` (GA4GH service-info 1.0),
    ``/configuration``, ``/map``, ``/entry_types`` and ``/filtering_terms`` (the terms the
    indexed data holds, ``infra/discovery/query.filtering_terms``), plus the model's
    ``/individuals/filtering_terms`` and ``/datasets/{id}/filtering_terms``.

Entry types
    ``g_variants``, ``individuals``, ``biosamples``, ``runs``, ``analyses`` (``beaconResultsets``
    responses, a result set per dataset) and ``datasets`` (a collection of public descriptions), each
    with ``GET`` (query string; variant parameters where variants are answered) and ``POST``
    (``beaconRequestBody``) at ``/{entry}``, ``/{entry}/{id}`` and the cross-links of the default
    model's ``endpoints.json``. g_variants and datasets have paths of their own in the OpenAPI; the
    four entry types answered alike share templated ones (``/{entry_type}/{id}/{target}``, an enum;
    anything the model does not define is a 404). Requests are read by ``gateway/beacon_request.py``,
    answers built by ``gateway/beacon_response.py``; the index is queried through
    ``infra/discovery/query.py``.

Who sees what (``run_query``)
    1. The request is read (400 for one this node cannot answer as asked).
    2. The caller: a bearer token is verified (401 if it is not accepted: a bad token is not
       anonymous); none is an anonymous caller.
    3. The query budget (``gateway/beacon_budget.py``) is charged: per IP for anonymous callers,
       per user and per IP for authenticated ones; spent → 429 with ``Retry-After``.
    4. Record access, asked only when records are asked for or the query names one person: the
       enforcement point (``Enforcer.authorize``, which audits every decision on ``genomebus.audit``)
       is asked for each dataset in scope that is public or whose caller is authenticated, never for
       an anonymous caller's controlled datasets. A refusal is a downgrade, never a 403.
    5. The index is searched once (counts; records for the datasets allowed) and each dataset
       answered at its own granularity with its count shown as ``beacon_response`` says.

    A query that names one individual, sample or file (``/individuals/{id}``,
    ``/individuals/{id}/g_variants``, an ``id`` filter on them) is answered only from the datasets
    whose records the caller may read: even its boolean answer says what that person carries. The
    others are listed in ``info.withheldDatasets``; none answered and nothing found is a 404.

``testMode: true`` answers without reading the data: every result set is empty, at the granularity
asked for, and the budget is not charged. Errors are ``beaconErrorResponse`` bodies with the RFC 7807
members beside them (``gateway/problems.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import asyncpg
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genomebus.gateway import beacon_model, beacon_response
from genomebus.gateway.beacon_budget import Charge, QueryBudget, retry_after
from genomebus.gateway.beacon_model import ENTRY_TYPES, PREFIX, EntryType
from genomebus.gateway.beacon_request import (MAX_LIMIT, MAX_POSITION, MAX_SKIP, BeaconRequest, BeaconRequestBody,
                                              body_from_parameters, invalid, read)
from genomebus.gateway.beacon_response import Counting, DatasetAnswer
from genomebus.gateway.enforcement import Allowed, bearer_token
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import service_info as node_service_info
from genomebus.infra.discovery import query
from genomebus.infra.discovery.query import IndexedDataset, QueryError, QueryWarning, SearchResult
from genomebus.infra.identity import CredentialError, Principal
from genomebus.infra.settings import Settings

log = logging.getLogger("genomebus.gateway.beacon")

router = APIRouter(prefix=PREFIX, tags=["Beacon"])
STARTED_AT = datetime.now().astimezone().isoformat()
ENTRY_ID_PATTERN = r"^[!-.0-~]{1,256}$"
"""An entry id: printable ASCII without ``/`` (variant ids such as ``21-10000062-A-G``, accessions, dataset ids)."""


# -- the index, as the router asks it -----------------------------------------------------------------

class Discovery(Protocol):
    """What the Beacon asks of the discovery index (``IndexDiscovery``; the unit tests give their own)."""

    async def search(self, entry_type: str, **criteria: Any) -> SearchResult: ...

    async def datasets(self) -> list[IndexedDataset]: ...

    async def filtering_terms(self) -> list[dict[str, Any]]: ...


class IndexDiscovery:
    """The discovery index in PostgreSQL (``infra/discovery/query.py``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def search(self, entry_type: str, **criteria: Any) -> SearchResult:
        return await query.search(self.pool, entry_type, **criteria)

    async def datasets(self) -> list[IndexedDataset]:
        return await query.datasets(self.pool)

    async def filtering_terms(self) -> list[dict[str, Any]]:
        return await query.filtering_terms(self.pool)


def discovery_of(request: Request) -> Discovery:
    state = request.app.state
    found = getattr(state, "discovery", None)
    if found is None:
        found = state.discovery = IndexDiscovery(state.pool)
    return found


def budget_of(request: Request) -> QueryBudget:
    state = request.app.state
    settings: Settings = state.settings
    found = getattr(state, "beacon_budget", None)
    if found is None or found.window_s != settings.beacon_budget_window_s:
        found = state.beacon_budget = QueryBudget(settings.beacon_budget_window_s)
    return found


def base_url(request: Request, settings: Settings) -> str:
    """This Beacon's URL as its clients reach it (the public URL when one is configured)."""
    root = settings.gateway_public_url.rstrip("/") if settings.gateway_public_url else \
        str(request.base_url).rstrip("/")
    return root + PREFIX


# -- who asks, and how often --------------------------------------------------------------------------

async def caller_of(request: Request) -> Principal | None:
    """The verified caller, or None without a credential; a credential that is not accepted is a 401."""
    try:
        if bearer_token(request) is None:
            return None
    except CredentialError:
        pass  # malformed: let the enforcement point answer it as it answers every bad credential
    return await request.app.state.enforcer.principal(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def charge_query(request: Request, caller: Principal | None, asked: BeaconRequest | None = None) -> None:
    """Charge one query to the caller's counters, or refuse it with 429 and ``Retry-After``."""
    settings: Settings = request.app.state.settings
    address = client_address(request)
    if caller is None:
        charges = [Charge(("anonymous", address), settings.beacon_budget_anonymous)]
    else:
        charges = [Charge(("user", caller.user_id), settings.beacon_budget_user)]
    charges.append(Charge(("ip", address), settings.beacon_budget_ip))
    spent = budget_of(request).charge(charges)
    if spent is None:
        return
    who = {"anonymous": "this address without a login", "user": "this user",
           "ip": "this address"}[spent.charge.key[0]]
    wait = retry_after(spent.wait_s)
    extra: dict[str, Any] = {"beacon_summary": asked.summary()} if asked is not None else {}
    raise Problem(429, "query-budget-spent",
                  f"the Beacon query budget of {who} ({spent.charge.limit} queries per "
                  f"{settings.beacon_budget_window_s:g} s) is spent; ask again in {wait} s",
                  headers={"Retry-After": wait}, **extra)


# -- answering a query --------------------------------------------------------------------------------

async def run_query(request: Request, entry_type: str, body: dict[str, Any] | None, *, entry_id: str | None = None,
                    linked: tuple[str, str] | None = None, charge_budget: bool = True) -> dict[str, Any]:
    """The whole Beacon response to ``body`` (a ``beaconRequestBody``) for ``entry_type``, as the caller of
    ``request`` may see it; errors are raised as ``Problem`` (400, 401, 404, 429, 503)."""
    settings: Settings = request.app.state.settings
    if entry_type not in ENTRY_TYPES:
        raise Problem(404, "not-found", f"no entry type {entry_type!r} in this Beacon "
                                        f"({', '.join(ENTRY_TYPES)})")
    asked = read(body, entry_type=entry_type, settings=settings, entry_id=entry_id, linked=linked)
    caller = await caller_of(request)
    if charge_budget and not asked.test_mode:
        charge_query(request, caller, asked)
    discovery = discovery_of(request)
    try:
        if asked.test_mode:
            return await _test_mode(request, asked, discovery)
        if ENTRY_TYPES[entry_type].collection:
            return await _collection(request, asked, caller, discovery)
        return await _resultsets(request, asked, caller, discovery)
    except QueryError as exc:
        raise invalid(exc.message, reason=exc.code, beacon_summary=asked.summary()) from None


def _counting(settings: Settings) -> Counting:
    return Counting(settings.beacon_count_threshold, settings.beacon_count_rounding)


def _in_scope(asked: BeaconRequest, dataset_id: str) -> bool:
    if asked.dataset_ids is not None and dataset_id not in asked.dataset_ids:
        return False
    if asked.linked is not None and asked.linked[0] == "datasets" and asked.linked[1] != dataset_id:
        return False
    return not (asked.entry_type == "datasets" and asked.entry_id is not None and asked.entry_id != dataset_id)


async def _record_access(request: Request, asked: BeaconRequest, caller: Principal | None,
                         discovery: Discovery) -> tuple[list[IndexedDataset], dict[str, Allowed], list[str]]:
    """The datasets in scope, those whose records the caller may read (each decision audited), and warnings."""
    scope = [d for d in await discovery.datasets() if _in_scope(asked, d.dataset_id)]
    candidates = [d for d in scope if d.access_rights == "public" or caller is not None]
    enforcer = request.app.state.enforcer
    decisions = await asyncio.gather(*(enforcer.authorize(request, d.dataset_id) for d in candidates),
                                     return_exceptions=True)
    allowed: dict[str, Allowed] = {}
    warnings: list[str] = []
    for dataset, decision in zip(candidates, decisions, strict=True):
        if isinstance(decision, Allowed):
            allowed[dataset.dataset_id] = decision
        elif isinstance(decision, Problem):
            if decision.status >= 500:
                warnings.append(f"{dataset.dataset_id}: records cannot be served right now ({decision.detail})")
        else:
            raise decision
    return scope, allowed, warnings


def _warnings(found: Sequence[QueryWarning], more: Sequence[str]) -> list[dict[str, Any]]:
    listed = [{"code": w.code, "message": w.message, **({"filterId": w.filter_id} if w.filter_id else {})}
              for w in found]
    return listed + [{"code": "records_unavailable", "message": m} for m in more]


def _handovers(request: Request, settings: Settings, dataset_id: str) -> list[dict[str, Any]]:
    root = beacon_model._root(base_url(request, settings))
    return [{"handoverType": {"id": "CUSTOM:drs-bundle", "label": "the dataset's files over GA4GH DRS"},
             "note": "the dataset as a DRS bundle; its objects' bytes are served under the same grant",
             "url": f"{root}/ga4gh/drs/v1/objects/{dataset_id}"}]


def _not_found(asked: BeaconRequest, what: str, withheld: Sequence[str]) -> Problem:
    detail = f"no {what} in the datasets answered"
    if withheld:
        detail += (f" ({len(withheld)} dataset(s) not asked: a query naming one individual, sample or file is "
                   "answered only from datasets whose records the caller may read)")
    return Problem(404, "not-found", detail, beacon_summary=asked.summary())


async def _resultsets(request: Request, asked: BeaconRequest, caller: Principal | None,
                      discovery: Discovery) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    person = asked.names_one_person
    allowed: dict[str, Allowed] = {}
    problems: list[str] = []
    withheld: list[str] = []
    dataset_ids = asked.dataset_ids
    if asked.granularity == "record" or person:
        scope, allowed, problems = await _record_access(request, asked, caller, discovery)
        if person:
            withheld = [d.dataset_id for d in scope if d.dataset_id not in allowed]
            dataset_ids = tuple(allowed)
    criteria: dict[str, Any] = {"variant": asked.variant, "filters": asked.filters, "dataset_ids": dataset_ids}
    if dataset_ids == ():
        result = SearchResult([], [])
    else:
        result = await discovery.search(
            asked.entry_type, **criteria, entry_id=asked.entry_id, linked=asked.linked,
            records_for=tuple(allowed) if asked.granularity == "record" else (), skip=asked.offset,
            limit=asked.limit)
    await _check_found(asked, result, discovery, dataset_ids, withheld)
    answers = [DatasetAnswer(
        m.dataset_id, m.access_rights, m.count,
        granularity=beacon_response.dataset_granularity(
            asked.granularity, public=m.access_rights == "public", authenticated=caller is not None,
            record_allowed=m.dataset_id in allowed),
        record_allowed=m.dataset_id in allowed, records=m.records,
        audit_event=allowed[m.dataset_id].audit_event_id if m.dataset_id in allowed else None)
        for m in result.matches]
    info: dict[str, Any] = {}
    warnings = _warnings(result.warnings, problems)
    if warnings:
        info["warnings"] = warnings
    if withheld:
        info["withheldDatasets"] = [{"id": d, "reason": "the query names one individual, sample or file: it is "
                                     "answered only where the caller may read the dataset's records"}
                                    for d in withheld]
    return beacon_response.resultsets_response(
        asked, answers, beacon_id=settings.beacon_identifier, counting=_counting(settings), info=info,
        handovers={d: _handovers(request, settings, d) for d in allowed})


async def _check_found(asked: BeaconRequest, result: SearchResult, discovery: Discovery,
                       dataset_ids: tuple[str, ...] | None, withheld: Sequence[str]) -> None:
    """404 when the entry asked about (or the one linked from) is in none of the datasets answered."""
    if asked.linked is not None and asked.linked[0] == "datasets":
        if not result.matches and not withheld:
            raise _not_found(asked, f"dataset {asked.linked[1]}", ())
        return
    subject = (asked.entry_type, asked.entry_id) if asked.entry_id is not None else asked.linked
    if subject is None or any(m.count for m in result.matches):
        return
    entry, ident = subject
    held = SearchResult([], [])
    if dataset_ids != ():
        held = await discovery.search(entry, entry_id=ident, dataset_ids=dataset_ids, limit=0)
    if not any(m.count for m in held.matches):
        raise _not_found(asked, f"{ENTRY_TYPES[entry].id} {ident}", withheld)


async def _collection(request: Request, asked: BeaconRequest, caller: Principal | None,
                      discovery: Discovery) -> dict[str, Any]:
    """The datasets: their descriptions are public, so every caller gets them at the granularity asked for."""
    settings: Settings = request.app.state.settings
    indexed = await discovery.datasets()
    dataset_ids = asked.dataset_ids
    withheld: list[str] = []
    if asked.names_one_person:
        scope, allowed, _ = await _record_access(request, asked, caller, discovery)
        withheld = [d.dataset_id for d in scope if d.dataset_id not in allowed]
        dataset_ids = tuple(allowed)
    if asked.entry_id is not None and not any(d.dataset_id == asked.entry_id for d in indexed):
        raise _not_found(asked, f"dataset {asked.entry_id}", ())
    result = SearchResult([], []) if dataset_ids == () else await discovery.search(
        "datasets", variant=asked.variant, filters=asked.filters, dataset_ids=dataset_ids, entry_id=asked.entry_id,
        records_for=tuple(d.dataset_id for d in indexed), skip=0, limit=len(indexed) or 1)
    records = [record for m in result.matches if m.count for record in m.records]
    info: dict[str, Any] = {}
    warnings = _warnings(result.warnings, ())
    if warnings:
        info["warnings"] = warnings
    if withheld:
        info["withheldDatasets"] = [{"id": d, "reason": "the query names one individual, sample or file"}
                                    for d in withheld]
    return beacon_response.collections_response(asked, records, beacon_id=settings.beacon_identifier, info=info)


async def _test_mode(request: Request, asked: BeaconRequest, discovery: Discovery) -> dict[str, Any]:
    """``testMode``: the answer's shape at the granularity asked for, with no data read (every set empty)."""
    settings: Settings = request.app.state.settings
    info = {"testMode": "this answer was not computed from the data: testMode answers every query with empty "
                        "result sets, at the granularity asked for"}
    if ENTRY_TYPES[asked.entry_type].collection:
        return beacon_response.collections_response(asked, [], beacon_id=settings.beacon_identifier, info=info)
    answers = [DatasetAnswer(d.dataset_id, d.access_rights, 0, granularity=asked.granularity)
               for d in await discovery.datasets() if _in_scope(asked, d.dataset_id)]
    return beacon_response.resultsets_response(asked, answers, beacon_id=settings.beacon_identifier,
                                               counting=_counting(settings), info=info)


# -- the OpenAPI's account of the answers -------------------------------------------------------------

class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResponseMeta(_Open):
    beaconId: str  # noqa: N815 - the spec's names
    apiVersion: str  # noqa: N815
    returnedSchemas: list[dict[str, Any]]  # noqa: N815
    returnedGranularity: Literal["boolean", "count", "record"]  # noqa: N815
    receivedRequestSummary: dict[str, Any]  # noqa: N815
    testMode: bool | None = None  # noqa: N815


class ResponseSummary(_Open):
    exists: bool
    numTotalResults: int | None = Field(  # noqa: N815
        None, description="At count and record granularity: the counts shown, added up")
    countPrecision: Literal["exact", "imprecise", "rounded"] | None = Field(  # noqa: N815
        None, description="Beacon 2.x: how exact numTotalResults is")
    countAdjustedTo: list[int | str] | None = Field(  # noqa: N815
        None, description="Beacon 2.x: the threshold a small count was reported as, or the rounding")


class ResultSet(_Open):
    id: str = Field(description="The dataset")
    setType: str  # noqa: N815
    exists: bool
    resultsCount: int | None = Field(None, description="Absent at boolean granularity")  # noqa: N815
    countPrecision: Literal["exact", "imprecise", "rounded"] | None = None  # noqa: N815
    countAdjustedTo: list[int | str] | None = None  # noqa: N815
    results: list[dict[str, Any]] | None = Field(None, description="In record responses: the dataset's page of "
                                                                   "records (empty where it is answered by count)")
    resultsHandovers: list[dict[str, Any]] | None = None  # noqa: N815
    info: dict[str, Any] | None = Field(None, description="`returnedGranularity` of this set, `accessRights`, "
                                                          "`auditEvent` (the audit event of a record access)")


class ResultSets(_Open):
    resultSets: list[ResultSet]  # noqa: N815


class BeaconResultsetsResponse(_Open):
    """A boolean, count or resultsets response (``meta.returnedGranularity`` says which), a result set per dataset."""

    meta: ResponseMeta
    responseSummary: ResponseSummary  # noqa: N815
    response: ResultSets | None = None
    info: dict[str, Any] | None = Field(None, description="`warnings` (unknown filters, ...), `withheldDatasets`")


class Collections(_Open):
    collections: list[dict[str, Any]]


class BeaconCollectionsResponse(_Open):
    """The datasets collection (``collections`` at record granularity)."""

    meta: ResponseMeta
    responseSummary: ResponseSummary  # noqa: N815
    response: Collections | None = None
    info: dict[str, Any] | None = None


class InformationalMeta(_Open):
    beaconId: str  # noqa: N815
    apiVersion: str  # noqa: N815
    returnedSchemas: list[dict[str, Any]]  # noqa: N815


class BeaconInformationalResponse(_Open):
    """``meta`` and the ``response`` document (info, configuration, map, entry types, filtering terms)."""

    meta: InformationalMeta
    response: dict[str, Any]


class BeaconServiceInfo(_Open):
    id: str
    name: str
    type: dict[str, str]
    organization: dict[str, str]
    version: str


_RETRY_AFTER = {"Retry-After": {"description": "Seconds until the query budget has room again",
                                "schema": {"type": "string"}}}


def _query_responses(model: type[BaseModel], *, by_id: bool) -> dict[int | str, dict[str, Any]]:
    statuses = (400, 401, 404, 429, 503) if by_id else (400, 401, 429, 503)
    found: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": "The Beacon's answer"},
                                              **problem_responses(*statuses)}
    found[429] = {**found[429], "headers": _RETRY_AFTER}
    return found


# -- GET parameters ---------------------------------------------------------------------------------
#
# Lists are declared without ``| None``: a query string cannot tell a list from anything else, and a
# fuzzer that sends ``filters=false`` as "not an array" would find it accepted as the filter "false".

IDS = r"^[A-Za-z0-9][^,]*(,[A-Za-z0-9][^,]*)*$"
Coordinates = list[Annotated[str, Field(pattern=r"^[0-9]{1,10}(,[0-9]{1,10})?$")]]
Bases = Annotated[str, Query(max_length=1000, pattern=r"^[ACGTNacgtn]*$")]
Text = Annotated[str, Query(max_length=256)]
Length = Annotated[int, Query(ge=0, le=MAX_POSITION)]


def common_query(
    requestedSchema: Text = None,  # noqa: N803 - the spec's names
    skip: Annotated[int, Query(ge=0, le=MAX_SKIP, description="Pages to skip")] = None,
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Records per dataset (0: the most allowed)")]
    = None,
    includeResultsetResponses: Annotated[Literal["ALL", "HIT", "MISS", "NONE"], Query()] = None,  # noqa: N803
    requestedGranularity: Annotated[Literal["boolean", "count", "record"], Query()] = None,  # noqa: N803
    testMode: Annotated[bool, Query()] = None,  # noqa: N803
    filters: Annotated[list[Annotated[str, Field(max_length=256, pattern=r"^[A-Za-z][^,]*(,[A-Za-z][^,]*)*$")]], Query(
        description="Filter ids, comma-separated or repeated; `field<value` (`= < > ! <= >=`) for an alphanumeric "
                    "one")] = [],  # noqa: B006 - FastAPI copies defaults; a list, not `| None`: see below
    datasetIds: Annotated[list[Annotated[str, Field(max_length=256, pattern=IDS)]], Query(  # noqa: N803
        description="Only these datasets (comma-separated or repeated)")] = [],  # noqa: B006
) -> dict[str, Any]:
    """The query string every entry endpoint takes, as keyword arguments of ``body_from_parameters``."""
    return {"filters": filters, "dataset_ids": datasetIds, "skip": skip, "limit": limit,
            "granularity": requestedGranularity, "include": includeResultsetResponses, "test_mode": testMode,
            "requested_schema": requestedSchema}


CommonQuery = Annotated[dict[str, Any], Depends(common_query)]


def get_body(
    request: Request,
    common: CommonQuery,
    referenceName: Annotated[str, Query(max_length=100)] = None,  # noqa: N803
    start: Annotated[Coordinates, Query(description="0-based: one (sequence or range query) or two values "
                                                    "(bracket), comma-separated")] = [],  # noqa: B006
    end: Annotated[Coordinates, Query(description="0-based, exclusive: one or two values")] = [],  # noqa: B006
    referenceBases: Bases = None,  # noqa: N803
    alternateBases: Bases = None,  # noqa: N803
    variantType: Text = None,  # noqa: N803
    variantMinLength: Length = None,  # noqa: N803
    variantMaxLength: Length = None,  # noqa: N803
    assemblyId: Text = None,  # noqa: N803
    genomicAlleleShortForm: Text = None,  # noqa: N803
    allele: Annotated[str, Query(max_length=256, description="genomicAlleleShortForm (the spec's GET name)")
                      ] = None,
    geneId: Annotated[str, Query(  # noqa: N803
        max_length=256, description="Not supported (see /configuration): 400")] = None,
    aminoacidChange: Annotated[str, Query(  # noqa: N803
        max_length=256, description="Not supported: 400")] = None,
) -> dict[str, Any]:
    """A GET query string with variant parameters (where variants are returned) as its ``beaconRequestBody``."""
    _only(request, VARIANT_QUERY)
    variant = {"referenceName": referenceName, "start": start, "end": end, "referenceBases": referenceBases,
               "alternateBases": alternateBases, "variantType": variantType, "variantMinLength": variantMinLength,
               "variantMaxLength": variantMaxLength, "assemblyId": assemblyId,
               "genomicAlleleShortForm": genomicAlleleShortForm or allele, "geneId": geneId,
               "aminoacidChange": aminoacidChange}
    return body_from_parameters(variant=variant, **common)


def get_plain_body(request: Request, common: CommonQuery) -> dict[str, Any]:
    """A GET query string without variant parameters (the spec's GET for individuals, biosamples, ...)."""
    _only(request, COMMON_QUERY)
    return body_from_parameters(variant={}, **common)


COMMON_QUERY = frozenset(inspect.signature(common_query).parameters) - {"request"}
VARIANT_QUERY = COMMON_QUERY | (frozenset(inspect.signature(get_body).parameters) - {"request", "common"})


def _only(request: Request, known: frozenset[str]) -> None:
    """A query parameter this endpoint does not take is refused: a typo never widens a query unseen."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise invalid(f"this endpoint takes no query parameter {', '.join(unknown)} (it takes "
                      f"{', '.join(sorted(known))})")


GetBody = Annotated[dict[str, Any], Depends(get_body)]
"""A GET's body where variant parameters are read too (the routes answering variants; the federated ones)."""
PlainGetBody = Annotated[dict[str, Any], Depends(get_plain_body)]
PostBody = Annotated[BeaconRequestBody | None, Body(description="A beaconRequestBody")]
EntryId = Annotated[str, Path(pattern=ENTRY_ID_PATTERN, description="The entry's id")]


def _posted(body: BeaconRequestBody | None) -> dict[str, Any]:
    return body.model_dump(by_alias=True, exclude_unset=True) if body is not None else {}


# -- framework endpoints --------------------------------------------------------------------------------

def _informational(settings: Settings, entity: str, schema: str, response: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"meta": beacon_model.info_meta(settings, entity, schema), "response": response})


_INFO_DOC = {200: {"model": BeaconInformationalResponse, "description": "beaconInfoResponse"}}


@router.get("", include_in_schema=False)
@router.get("/", summary="Beacon information (beaconInfoResponse)", responses=_INFO_DOC)
@router.get("/info", summary="Beacon information (beaconInfoResponse)", responses=_INFO_DOC)
async def beacon_info(request: Request, requestedSchema: Text = None) -> JSONResponse:  # noqa: N803
    settings: Settings = request.app.state.settings
    return _informational(settings, "info", "beacon-info-v2.0.0",
                          beacon_model.info(settings, base_url=base_url(request, settings), started_at=STARTED_AT))


@router.get("/service-info", summary="GA4GH service-info 1.0 of the Beacon",
            responses={200: {"model": BeaconServiceInfo, "description": "GA4GH service-info"}})
async def beacon_service_info(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    return JSONResponse(beacon_model.service_info(settings, started_at=STARTED_AT, version=node_service_info.VERSION))


@router.get("/configuration", summary="Beacon configuration (beaconConfigurationResponse)",
            responses={200: {"model": BeaconInformationalResponse, "description": "beaconConfigurationResponse"}})
async def beacon_configuration(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    return _informational(settings, "configuration", "beacon-configuration-v2.0.0",
                          beacon_model.configuration(settings))


@router.get("/map", summary="Beacon map (beaconMapResponse)",
            responses={200: {"model": BeaconInformationalResponse, "description": "beaconMapResponse"}})
async def beacon_map(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    return _informational(settings, "map", "beacon-map-v2.0.0", beacon_model.beacon_map(base_url(request, settings)))


@router.get("/entry_types", summary="Entry types (beaconEntryTypesResponse)",
            responses={200: {"model": BeaconInformationalResponse, "description": "beaconEntryTypesResponse"}})
async def beacon_entry_types(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    return _informational(settings, "entryType", "beacon-entry-types-v2.0.0",
                          {"entryTypes": beacon_model.entry_type_definitions()})


Skip = Annotated[int, Query(ge=0, le=MAX_SKIP, description="Pages to skip")]
Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Terms per page (0: all)")]
_TERMS_DOC = {200: {"model": BeaconInformationalResponse, "description": "beaconFilteringTermsResponse"},
              **problem_responses(400, 503)}


async def filtering_terms_response(request: Request, *, skip: int, limit: int, scope: str | None = None
                                   ) -> JSONResponse:
    settings: Settings = request.app.state.settings
    terms = await discovery_of(request).filtering_terms()
    if scope is not None:
        terms = [t for t in terms if scope in t.get("scopes", ())]
    page = terms[skip * limit:skip * limit + limit] if limit else terms
    return _informational(settings, "filteringTerm", "beacon-filtering-terms-v2.0.0",
                          {"filteringTerms": page, "resources": query.ontology_resources(page)})


@router.get("/filtering_terms", summary="The filtering terms the node's data holds (beaconFilteringTermsResponse)",
            responses=_TERMS_DOC)
async def beacon_filtering_terms(request: Request, skip: Skip = 0, limit: Limit = 0) -> JSONResponse:
    return await filtering_terms_response(request, skip=skip, limit=limit)


# -- entry type endpoints --------------------------------------------------------------------------------
#
# g_variants (variant parameters in GET too) and datasets (a collection) have paths of their own; the
# other entry types, answered alike, share templated paths whose ``{entry_type}`` names them (an
# ``enum`` in the OpenAPI; another value is a 404). So every URL of ``/map`` is documented, by fewer
# operations. Order matters: a fixed path is registered before a template that would match it.

_QUERY_DOC = (
    "Answered per dataset, by authorisation: records where the caller may read the dataset (a grant, or a public "
    "dataset; audited), counts for an authenticated caller or a public dataset (1 up to the node's threshold "
    "reported as the threshold, larger counts rounded up; `countPrecision`, `countAdjustedTo`), booleans "
    "otherwise; never more than `requestedGranularity`. Each result set states its granularity in "
    "`info.returnedGranularity`. Queries are budgeted per caller (429 with `Retry-After`). A query naming one "
    "individual, sample or file is answered only from datasets whose records the caller may read.")
ANSWERED_ALIKE = ("individuals", "biosamples", "runs", "analyses")
WITH_VARIANTS = tuple(e.path for e in ENTRY_TYPES.values() if "g_variants" in e.lookups)
"""Entry types with a ``/{entry_type}/{id}/g_variants`` cross-link."""
LINKS = {(e.path, target) for e in ENTRY_TYPES.values() for target in e.lookups if target != "g_variants"}
"""The other cross-links of the default model's endpoints (``/g_variants/{id}/individuals``, ...)."""


def _entry_type(values: Sequence[str], what: str) -> Any:
    return Annotated[str, Path(description=what, json_schema_extra={"enum": list(values)})]


AlikeType = _entry_type(ANSWERED_ALIKE, "The entry type")
WithVariantsType = _entry_type(WITH_VARIANTS, "The entry type of the entry whose variants are asked for")
LinkFrom = _entry_type(sorted({f for f, _ in LINKS}), "The entry type of the entry linked from")
LinkTo = _entry_type(sorted({t for _, t in LINKS}), "The entry type asked for (the default model's cross-links: "
                     + ", ".join(f"{f}/{{id}}/{t}" for f, t in sorted(LINKS)) + ")")


def _known(entry_type: str, values: Sequence[str]) -> str:
    if entry_type not in values:
        raise Problem(404, "not-found", f"no entry type {entry_type!r} here (one of {', '.join(values)})")
    return entry_type


def _add(path: str, endpoint: Any, method: str, name: str, summary: str, model: type[BaseModel], *,
         by_id: bool) -> None:
    router.add_api_route(path, endpoint, methods=[method], name=name, summary=f"{summary} ({method})",
                         description=_QUERY_DOC, responses=_query_responses(model, by_id=by_id))


def _own_routes(entry: EntryType) -> None:
    """``/{path}`` and ``/{path}/{id}`` of g_variants (variant parameters in GET too) and datasets."""
    name, model = entry.path, BeaconCollectionsResponse if entry.collection else BeaconResultsetsResponse

    if name == "g_variants":
        async def get_all(request: Request, body: GetBody) -> JSONResponse:
            return JSONResponse(await run_query(request, name, body))

        async def get_one(request: Request, id: EntryId, body: GetBody) -> JSONResponse:  # noqa: A002
            return JSONResponse(await run_query(request, name, body, entry_id=id))
    else:
        async def get_all(request: Request, body: PlainGetBody) -> JSONResponse:  # type: ignore[misc]
            return JSONResponse(await run_query(request, name, body))

        async def get_one(request: Request, id: EntryId,  # type: ignore[misc]  # noqa: A002
                          body: PlainGetBody) -> JSONResponse:
            return JSONResponse(await run_query(request, name, body, entry_id=id))

    async def post_all(request: Request, body: PostBody = None) -> JSONResponse:
        return JSONResponse(await run_query(request, name, _posted(body)))

    async def post_one(request: Request, id: EntryId, body: PostBody = None) -> JSONResponse:  # noqa: A002
        return JSONResponse(await run_query(request, name, _posted(body), entry_id=id))

    what = f"{entry.name} ({entry.id})"
    _add(f"/{name}", get_all, "GET", f"beacon_{name}_get", f"{what}: query", model, by_id=False)
    _add(f"/{name}", post_all, "POST", f"beacon_{name}_post", f"{what}: query", model, by_id=False)
    _add(f"/{name}/{{id}}", get_one, "GET", f"beacon_{name}_one_get", f"{what}: one entry", model, by_id=True)
    _add(f"/{name}/{{id}}", post_one, "POST", f"beacon_{name}_one_post", f"{what}: one entry", model, by_id=True)


async def _entry_terms(request: Request, skip: Skip = 0, limit: Limit = 0) -> JSONResponse:
    return await filtering_terms_response(request, skip=skip, limit=limit, scope="individual")


async def _entry_terms_post(request: Request, body: PostBody = None) -> JSONResponse:
    pagination = read(_posted(body), entry_type="individuals", settings=request.app.state.settings)
    return await filtering_terms_response(request, skip=pagination.skip, limit=pagination.limit, scope="individual")


async def _dataset_terms(request: Request, dataset_id: str, *, skip: int, limit: int) -> JSONResponse:
    if not any(d.dataset_id == dataset_id for d in await discovery_of(request).datasets()):
        raise Problem(404, "not-found", f"no dataset {dataset_id} in this Beacon")
    return await filtering_terms_response(request, skip=skip, limit=limit)


async def _dataset_terms_get(request: Request, id: EntryId, skip: Skip = 0, limit: Limit = 0  # noqa: A002
                             ) -> JSONResponse:
    return await _dataset_terms(request, id, skip=skip, limit=limit)


async def _dataset_terms_post(request: Request, id: EntryId, body: PostBody = None) -> JSONResponse:  # noqa: A002
    pagination = read(_posted(body), entry_type="datasets", settings=request.app.state.settings)
    return await _dataset_terms(request, id, skip=pagination.skip, limit=pagination.limit)


async def _alike_get(request: Request, entry_type: AlikeType, body: PlainGetBody) -> JSONResponse:
    return JSONResponse(await run_query(request, _known(entry_type, ANSWERED_ALIKE), body))


async def _alike_post(request: Request, entry_type: AlikeType, body: PostBody = None) -> JSONResponse:
    return JSONResponse(await run_query(request, _known(entry_type, ANSWERED_ALIKE), _posted(body)))


async def _alike_one_get(request: Request, entry_type: AlikeType, id: EntryId,  # noqa: A002
                         body: PlainGetBody) -> JSONResponse:
    return JSONResponse(await run_query(request, _known(entry_type, ANSWERED_ALIKE), body, entry_id=id))


async def _alike_one_post(request: Request, entry_type: AlikeType, id: EntryId,  # noqa: A002
                          body: PostBody = None) -> JSONResponse:
    return JSONResponse(await run_query(request, _known(entry_type, ANSWERED_ALIKE), _posted(body), entry_id=id))


async def _variants_of_get(request: Request, entry_type: WithVariantsType, id: EntryId,  # noqa: A002
                           body: GetBody) -> JSONResponse:
    linked = (_known(entry_type, WITH_VARIANTS), id)
    return JSONResponse(await run_query(request, "g_variants", body, linked=linked))


async def _variants_of_post(request: Request, entry_type: WithVariantsType, id: EntryId,  # noqa: A002
                            body: PostBody = None) -> JSONResponse:
    linked = (_known(entry_type, WITH_VARIANTS), id)
    return JSONResponse(await run_query(request, "g_variants", _posted(body), linked=linked))


def _link(entry_type: str, target: str) -> tuple[str, str]:
    if (entry_type, target) not in LINKS:
        raise Problem(404, "not-found", f"no cross-link {entry_type}/{{id}}/{target} here (the default model's: "
                                        + ", ".join(f"{f}/{{id}}/{t}" for f, t in sorted(LINKS)) + ")")
    return entry_type, target


async def _linked_get(request: Request, entry_type: LinkFrom, id: EntryId, target: LinkTo,  # noqa: A002
                      body: PlainGetBody) -> JSONResponse:
    parent, wanted = _link(entry_type, target)
    return JSONResponse(await run_query(request, wanted, body, linked=(parent, id)))


async def _linked_post(request: Request, entry_type: LinkFrom, id: EntryId, target: LinkTo,  # noqa: A002
                       body: PostBody = None) -> JSONResponse:
    parent, wanted = _link(entry_type, target)
    return JSONResponse(await run_query(request, wanted, _posted(body), linked=(parent, id)))


def _register() -> None:
    _own_routes(ENTRY_TYPES["g_variants"])
    _own_routes(ENTRY_TYPES["datasets"])
    terms_doc = {**_TERMS_DOC, **problem_responses(404)}
    for method, endpoint in (("GET", _entry_terms), ("POST", _entry_terms_post)):
        router.add_api_route("/individuals/filtering_terms", endpoint, methods=[method], responses=_TERMS_DOC,
                             name=f"beacon_individuals_filtering_terms_{method.lower()}",
                             summary=f"Filtering terms of individuals ({method})")
    for method, endpoint in (("GET", _dataset_terms_get), ("POST", _dataset_terms_post)):
        router.add_api_route("/datasets/{id}/filtering_terms", endpoint, methods=[method], responses=terms_doc,
                             name=f"beacon_dataset_filtering_terms_{method.lower()}",
                             summary=f"Filtering terms of one dataset ({method})")
    alike = "Individuals, biosamples, runs or analyses"
    _add("/{entry_type}", _alike_get, "GET", "beacon_entries_get", f"{alike}: query", BeaconResultsetsResponse,
         by_id=True)
    _add("/{entry_type}", _alike_post, "POST", "beacon_entries_post", f"{alike}: query", BeaconResultsetsResponse,
         by_id=True)
    _add("/{entry_type}/{id}", _alike_one_get, "GET", "beacon_entry_get", f"{alike}: one entry",
         BeaconResultsetsResponse, by_id=True)
    _add("/{entry_type}/{id}", _alike_one_post, "POST", "beacon_entry_post", f"{alike}: one entry",
         BeaconResultsetsResponse, by_id=True)
    _add("/{entry_type}/{id}/g_variants", _variants_of_get, "GET", "beacon_variants_of_get",
         "Genomic variants of one entry", BeaconResultsetsResponse, by_id=True)
    _add("/{entry_type}/{id}/g_variants", _variants_of_post, "POST", "beacon_variants_of_post",
         "Genomic variants of one entry", BeaconResultsetsResponse, by_id=True)
    _add("/{entry_type}/{id}/{target}", _linked_get, "GET", "beacon_linked_get", "Entries linked to one entry",
         BeaconResultsetsResponse, by_id=True)
    _add("/{entry_type}/{id}/{target}", _linked_post, "POST", "beacon_linked_post", "Entries linked to one entry",
         BeaconResultsetsResponse, by_id=True)


_register()
