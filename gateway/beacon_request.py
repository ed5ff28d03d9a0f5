"""A Beacon request, as the Beacon router reads it: a ``beaconRequestBody`` (POST) or its query string (GET).

Both forms become one ``BeaconRequest``: the variant query and the filters (validated by
``infra/discovery/query.py``, whose ``QueryError`` is a 400), the requested granularity, which
result sets to include, the page, ``testMode``, and the datasets asked about. Anything else the
body holds that this Beacon does not understand is refused (400) rather than ignored, so a typo
never silently widens a query.

``requestParameters`` may be flat (``{"referenceName": "21", "start": [100]}``, as clients send
them) or grouped by the entry type they describe, as the default model's ``requestParameters.json``
does (``{"g_variant": {...}}``), and ``{"datasets": {"datasetIds": [...]}}`` (or a flat
``datasetIds``) restricts the query to some datasets. ``receivedRequestSummary`` echoes them in
the grouped form, the only one the framework's schema accepts (an object per key).

Pagination: ``skip`` is the number of pages to skip, as the framework defines it, so a dataset's
records start at ``skip * limit``; ``limit`` 0 or above ``beacon_max_limit`` is that maximum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from genomebus.gateway.beacon_model import API_VERSION, ENTRY_TYPES, PERSON_LEVEL
from genomebus.gateway.problems import Problem
from genomebus.infra.discovery import query
from genomebus.infra.discovery.query import Filter, QueryError, VariantQuery
from genomebus.infra.settings import Settings

MAX_POSITION = 2**31 - 1
"""The largest coordinate or length a query may name (the index stores 32-bit positions)."""
MAX_SKIP = 100_000
MAX_LIMIT = 10_000
"""The schema's bound on ``limit``; the node answers at most ``beacon_max_limit`` records per dataset."""
INCLUDE = ("ALL", "HIT", "MISS", "NONE")
PERSON_ID_FIELDS = {("individuals", "id"), ("biosamples", "id"), ("biosamples", "individualId"), ("runs", "id"),
                    ("analyses", "id")}
"""Alphanumeric fields naming one person's entry: a filter on them singles that person out."""


# -- the body, as the OpenAPI documents it and as it is checked ----------------------------------------

class _Strict(BaseModel):
    """Types are checked as written (no ``"5"`` for 5); members this model does not name are kept."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


class SchemaPerEntity(_Strict):
    entityType: str | None = None  # noqa: N815 - the spec's names
    schema_: str | None = Field(None, alias="schema")


class RequestMeta(_Strict):
    apiVersion: str | None = Field(  # noqa: N815 - the spec's names
        None, description="The Beacon API version the client expects, e.g. v2.0.0")
    requestedSchemas: list[SchemaPerEntity] = Field(  # noqa: N815
        default_factory=list, description="Schemas asked for; this Beacon answers in the default model's")


class Pagination(_Strict):
    skip: int = Field(0, ge=0, le=MAX_SKIP, description="Pages to skip (a dataset's records start at skip × limit)")
    limit: int = Field(10, ge=0, le=MAX_LIMIT, description="Records per dataset; 0 or more than the node's "
                                                          "maximum (see /configuration) is that maximum")


class FilterObject(_Strict):
    """An ontology, alphanumeric or custom filter (``filteringTerms.json``)."""

    id: str = Field(min_length=1, max_length=256)
    operator: Literal["=", "<", ">", "!", ">=", "<="] | None = None
    value: str | int | float | None = None
    includeDescendantTerms: bool | None = None  # noqa: N815
    similarity: Literal["exact", "high", "medium", "low"] | None = None
    scope: str | None = None


class _Closed(BaseModel):
    """Types checked as written, and nothing this model does not name (a typo would widen the query)."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]
Positions = Annotated[list[Position] | None, Field(min_length=1, max_length=2)]
Unsupported = Annotated[str | None, Field(max_length=256, description="Not supported (see /configuration): 400")]
DatasetIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(min_length=1,
                                                                                        max_length=100)]


class VariantParameters(_Closed):
    """The default model's ``g_variant`` request parameters (0-based coordinates, end exclusive)."""

    referenceName: str | None = Field(None, min_length=1, max_length=100)  # noqa: N815
    start: Positions = Field(None, description="One position (sequence or range query) or two (bracket)")
    end: Positions = Field(None, description="One position (range query) or two (bracket)")
    referenceBases: str | None = Field(None, max_length=1000)  # noqa: N815
    alternateBases: str | None = Field(None, max_length=1000)  # noqa: N815
    variantType: str | None = Field(None, max_length=64)  # noqa: N815
    variantMinLength: Position | None = None  # noqa: N815
    variantMaxLength: Position | None = None  # noqa: N815
    assemblyId: str | None = Field(None, max_length=64)  # noqa: N815
    genomicAlleleShortForm: str | None = Field(None, max_length=256)  # noqa: N815
    geneId: Unsupported = None  # noqa: N815
    aminoacidChange: Unsupported = None  # noqa: N815
    mateName: Unsupported = None  # noqa: N815


class DatasetParameters(_Closed):
    datasetIds: DatasetIds  # noqa: N815


class RequestParameters(VariantParameters):
    """Variant parameters flat (as clients send them) or under ``g_variant`` (the default model's
    grouping), and the datasets to ask (``datasets.datasetIds`` or a flat ``datasetIds``)."""

    schema_: str | None = Field(None, alias="$schema")
    g_variant: VariantParameters | None = None
    datasets: DatasetParameters | None = None
    datasetIds: DatasetIds | None = None  # noqa: N815


class BeaconQuery(_Strict):
    requestParameters: RequestParameters = Field(default_factory=RequestParameters)  # noqa: N815
    filters: list[FilterObject | Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=50)
    includeResultsetResponses: Literal["ALL", "HIT", "MISS", "NONE"] = "HIT"  # noqa: N815
    pagination: Pagination = Field(default_factory=Pagination)
    requestedGranularity: Literal["boolean", "count", "record"] | None = None  # noqa: N815
    testMode: bool = False  # noqa: N815


class BeaconRequestBody(_Strict):
    """A ``beaconRequestBody``: ``meta`` (optional here: v2.0.0 is assumed) and the ``query``."""

    meta: RequestMeta = Field(default_factory=RequestMeta)
    query: BeaconQuery = Field(default_factory=BeaconQuery)


_BODY = TypeAdapter(BeaconRequestBody)


# -- the request as understood ----------------------------------------------------------------------

@dataclass(frozen=True)
class BeaconRequest:
    entry_type: str
    granularity: str
    """The granularity asked for (absent: ``boolean``, except for the datasets collection: ``record``)."""
    include: str
    skip: int
    limit: int
    test_mode: bool = False
    variant: VariantQuery | None = None
    filters: tuple[Filter, ...] = ()
    dataset_ids: tuple[str, ...] | None = None
    entry_id: str | None = None
    linked: tuple[str, str] | None = None
    api_version: str = API_VERSION
    requested_schemas: tuple[dict[str, Any], ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    """The request parameters as received, grouped (``{"g_variant": {...}, "datasets": {...}}``)."""
    filter_names: tuple[str, ...] = ()

    @property
    def offset(self) -> int:
        return self.skip * self.limit

    @property
    def names_one_person(self) -> bool:
        """Does the query single out one individual, sample or file (by id, as the entry or the link)?

        Such a query is answered only from datasets whose records the caller may read: its answer,
        even a boolean one, says what that one person carries or has.
        """
        if self.entry_id is not None and self.entry_type in PERSON_LEVEL:
            return True
        if self.linked is not None and self.linked[0] in PERSON_LEVEL:
            return True
        for item in self.filters:
            if item.value is None:
                continue
            scope = _scope_of(item.scope) or (self.entry_type if item.id == "id" else None)
            if item.id == "individualId":
                scope = scope or "biosamples"
            if (scope, item.id) in PERSON_ID_FIELDS:
                return True
        return False

    def summary(self) -> dict[str, Any]:
        """``beaconReceivedRequestSummary``: the request as this Beacon understood it."""
        summary: dict[str, Any] = {
            "apiVersion": self.api_version,
            "requestedSchemas": list(self.requested_schemas),
            "pagination": {"skip": self.skip, "limit": self.limit},
            "requestedGranularity": self.granularity,
            "includeResultsetResponses": self.include,
            "testMode": self.test_mode,
        }
        if self.filter_names:
            summary["filters"] = list(self.filter_names)
        if self.parameters:
            summary["requestParameters"] = self.parameters
        return summary


def _scope_of(scope: str | None) -> str | None:
    if scope is None:
        return None
    for entry in ENTRY_TYPES.values():
        if scope in (entry.path, entry.id):
            return entry.path
    return None


def invalid(detail: str, **extra: Any) -> Problem:
    return Problem(400, "invalid-request", detail, **extra)


def read(body: Any, *, entry_type: str, settings: Settings, entry_id: str | None = None,
         linked: tuple[str, str] | None = None) -> BeaconRequest:
    """A ``beaconRequestBody`` (a JSON value, unchecked) → the request, or a 400 ``Problem`` saying what is wrong."""
    if body is None:
        body = {}
    _check_text(body)
    try:
        checked = _BODY.validate_python(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = errors[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        raise invalid(f"the request body is not a beaconRequestBody: {where}: {first['msg']}",
                      errors=errors) from None
    asked = checked.query
    parameters, variant_parameters, dataset_ids = _parameters(asked.requestParameters)
    try:
        variant = query.variant_query(variant_parameters, max_range_bp=settings.beacon_range_max_bp)
        filters = query.filters_from_request([item.model_dump(exclude_none=True) if isinstance(item, FilterObject)
                                              else item for item in asked.filters])
    except QueryError as exc:
        raise invalid(exc.message, reason=exc.code) from None
    granularity = asked.requestedGranularity or ("record" if ENTRY_TYPES[entry_type].collection else "boolean")
    limit = asked.pagination.limit
    if limit == 0 or limit > settings.beacon_max_limit:
        limit = settings.beacon_max_limit
    return BeaconRequest(
        entry_type=entry_type, granularity=granularity, include=asked.includeResultsetResponses,
        skip=asked.pagination.skip, limit=limit, test_mode=asked.testMode, variant=variant, filters=filters,
        dataset_ids=dataset_ids, entry_id=entry_id, linked=linked,
        api_version=checked.meta.apiVersion or API_VERSION,
        requested_schemas=tuple(s.model_dump(by_alias=True, exclude_none=True)
                                for s in checked.meta.requestedSchemas),
        parameters=parameters, filter_names=tuple(_filter_name(f) for f in filters))


def _check_text(value: Any, where: str = "the body") -> None:
    """Text the index cannot hold (a NUL character, a lone surrogate) is refused before it reaches PostgreSQL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(f"{where} holds a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"{where} is not valid UTF-8 text") from None
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _check_text(key, where)
            _check_text(inner, f"{where}.{key}" if isinstance(key, str) and where != "the body" else str(key))
    elif isinstance(value, list | tuple):
        for inner in value:
            _check_text(inner, where)


def _parameters(given: RequestParameters) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...] | None]:
    """``requestParameters`` → (their grouped echo, the variant parameters, the dataset ids asked for)."""
    flat = given.model_dump(include=set(VariantParameters.model_fields), exclude_none=True)
    grouped = given.g_variant.model_dump(exclude_none=True) if given.g_variant is not None else {}
    twice = sorted(set(flat) & set(grouped))
    if twice:
        raise invalid(f"requestParameters names {', '.join(twice)} both flat and under g_variant: send one")
    if given.datasets is not None and given.datasetIds is not None:
        raise invalid("requestParameters names the datasets twice (datasets.datasetIds and datasetIds): send one")
    variant = {**flat, **grouped}
    ids = given.datasets.datasetIds if given.datasets is not None else given.datasetIds
    echo: dict[str, Any] = {}
    if variant:
        echo["g_variant"] = variant
    if ids is not None:
        echo["datasets"] = {"datasetIds": list(ids)}
    return echo, variant, None if ids is None else tuple(ids)


def _filter_name(item: Filter) -> str:
    """A filter as ``receivedRequestSummary.filters`` lists it (a string)."""
    if item.value is None:
        return item.id
    return f"{item.id}{item.operator}{item.value}"


# -- GET ---------------------------------------------------------------------------------------------

def body_from_parameters(*, variant: Mapping[str, Any], filters: Sequence[str] | None,
                         dataset_ids: Sequence[str] | None, skip: int | None, limit: int | None,
                         granularity: str | None, include: str | None, test_mode: bool | None,
                         requested_schema: str | None) -> dict[str, Any]:
    """A GET's query string (already typed by the route) as the equivalent ``beaconRequestBody``."""
    parameters: dict[str, Any] = {k: v for k, v in variant.items() if v is not None and v != []}
    for key in ("start", "end"):
        if key in parameters:
            parameters[key] = [int(p) for value in parameters[key] for p in str(value).split(",") if p != ""]
    if dataset_ids:
        parameters["datasetIds"] = [i for value in dataset_ids for i in value.split(",") if i.strip()]
    query_part: dict[str, Any] = {"requestParameters": parameters}
    if filters:
        query_part["filters"] = [f for value in filters for f in value.split(",") if f.strip()]
    pagination = {k: v for k, v in (("skip", skip), ("limit", limit)) if v is not None}
    if pagination:
        query_part["pagination"] = pagination
    if granularity is not None:
        query_part["requestedGranularity"] = granularity
    if include is not None:
        query_part["includeResultsetResponses"] = include
    if test_mode is not None:
        query_part["testMode"] = test_mode
    meta: dict[str, Any] = {"apiVersion": API_VERSION}
    if requested_schema:
        meta["requestedSchemas"] = [{"schema": requested_schema}]
    return {"meta": meta, "query": query_part}

