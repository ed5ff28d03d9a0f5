"""Beacon v2 discovery as a client: ask a node (or a whole federation) whether it holds a variant, how often, and
which records.

``DiscoveryClient`` talks to the node's Beacon (``/beacon/v2`` of its gateway, or any Beacon v2 URL)
with the caller's bearer token, if any: without one the answers are booleans (plus counts for public
datasets); a researcher's token gets counts; a grant for a dataset gets its records. ``federated``
sends the query to ``/beacon/v2/federated``, which asks this node and its peers at once and says how
each of them answered. ``genomebus discover`` is a thin shell around it.

Queries are written as people write variants, with VCF's 1-based positions, and sent as Beacon's
0-based ones (``parse_variant``):

- ``21:10000062:A>G``, ``21:10000062 A>G``, ``21-10000062-A-G`` (gnomAD) or ``21:10000062:A:G``: a
  sequence query, the allele at that position (alternate ``N`` matches any base);
- ``21:10000062``: whatever overlaps that one position; ``21:10,000,001-10,500,000``: a range,
  inclusive at both ends as in samtools (sent as ``start`` 10000000, ``end`` 10500000);
- ``NC_000021.9:g.10000062A>G`` or any HGVS genomic short form: sent as it is
  (``genomicAlleleShortForm``), for the node to read.

Filters (``parse_filter``): an ontology term or a custom term by itself (``HP:0001250``,
``NCIT:C16576``), or an alphanumeric one, ``id`` operator ``value``, with ``=``, ``!`` (or ``!=``),
``<``, ``>``, ``<=``, ``>=``: ``alleleFrequency<0.01``, ``sex=female``, ``id=FI-EPM1-*``.

Answers (``Answer``): ``exists``, the total ``count`` when there is one, the granularity the
Beacon returned, a ``ResultSet`` per dataset (and node, when federated) with its own count, how
exact that count is (``countPrecision``, ``countAdjustedTo``) and its records, and for a federated
query a ``NodeStatus`` per node. Errors: ``BeaconRefused`` (the Beacon's status and message: 400
a query it cannot read, 401 a refused token, 429 a spent query budget with ``retry_after``),
``InvalidQuery`` (nothing was sent), ``GatewayUnavailable`` (no answer at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from genomebus.infra.discovery.query import ENTRY_TYPES
from genomebus.infra.settings import Settings
from genomebus.producers.commands import GatewayUnavailable

API_VERSION = "v2.0.0"
GRANULARITIES = ("boolean", "count", "record")
INCLUDE = ("ALL", "HIT", "MISS", "NONE")
Granularity = Literal["boolean", "count", "record"]


class InvalidQuery(ValueError):
    """A variant or filter that cannot be written as a Beacon query; the message says how to write it."""


class BeaconRefused(Exception):
    """The Beacon answered with an error: ``status`` (400, 401, 404, 429, 5xx), its message, ``retry_after``."""

    def __init__(self, status: int, detail: str, retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


# -- writing a query ----------------------------------------------------------------------------------

VARIANT_HOW = ("write chr:pos:REF>ALT (e.g. 21:10000062:A>G), chr-pos-REF-ALT, chr:pos, chr:start-end "
               "(1-based, inclusive), or an HGVS genomic short form (NC_000021.9:g.10000062A>G)")
_NAME = r"(?P<chr>[A-Za-z0-9_.]+)"
_POS = r"[0-9][0-9,]*"
_BASES = r"[ACGTNacgtn]+"
_SEQUENCE = (re.compile(rf"^{_NAME}:(?P<pos>{_POS})[:\s]\s*(?P<ref>{_BASES})\s*(?:>|:)\s*(?P<alt>{_BASES})$"),
             re.compile(rf"^{_NAME}-(?P<pos>{_POS})-(?P<ref>{_BASES})-(?P<alt>{_BASES})$"))
_RANGE = re.compile(rf"^{_NAME}:(?P<start>{_POS})(?:-(?P<end>{_POS}))?$")


def parse_variant(text: str) -> dict[str, Any]:
    """Beacon ``requestParameters`` (0-based ``start``/``end``) for a variant written with 1-based positions."""
    text = text.strip()
    if ":g." in text or text.startswith("g."):
        return {"genomicAlleleShortForm": text}
    for pattern in _SEQUENCE:
        match = pattern.match(text)
        if match:
            pos = _position(match["pos"], text)
            return {"referenceName": match["chr"], "start": [pos - 1], "referenceBases": match["ref"].upper(),
                    "alternateBases": match["alt"].upper()}
    match = _RANGE.match(text)
    if match is None:
        raise InvalidQuery(f"{text!r} is not a variant or a region; {VARIANT_HOW}")
    start = _position(match["start"], text)
    end = _position(match["end"], text) if match["end"] else start
    if end < start:
        raise InvalidQuery(f"{text!r}: the region ends before it starts; write chr:start-end with start <= end")
    return {"referenceName": match["chr"], "start": [start - 1], "end": [end]}


def _position(digits: str, text: str) -> int:
    value = int(digits.replace(",", ""))
    if value < 1:
        raise InvalidQuery(f"{text!r}: positions count from 1, as in VCF; {VARIANT_HOW}")
    return value


FILTER_HOW = ("write a term (HP:0001250, NCIT:C16576) or id, operator and value (alleleFrequency<0.01, sex=female; "
              "operators = ! < > <= >=)")
_ALPHANUMERIC = re.compile(r"^(?P<id>[^=<>!\s][^=<>!]*?)\s*(?P<op>>=|<=|!=|=|<|>|!)\s*(?P<value>.+)$")


def parse_filter(text: str, *, include_descendant_terms: bool = True) -> dict[str, Any]:
    """A Beacon filter: ``{id}`` for a term (with ``includeDescendantTerms``), ``{id, operator, value}`` else."""
    text = text.strip()
    match = _ALPHANUMERIC.match(text)
    if match:
        value = match["value"].strip()
        if not value:
            raise InvalidQuery(f"filter {text!r} has no value; {FILTER_HOW}")
        return {"id": match["id"].strip(), "operator": "!" if match["op"] == "!=" else match["op"], "value": value}
    if not text or any(c.isspace() for c in text) or any(c in text for c in "=<>!"):
        raise InvalidQuery(f"filter {text!r} is not a term or a comparison; {FILTER_HOW}")
    return {"id": text, "includeDescendantTerms": include_descendant_terms}


def request_body(*, request_parameters: Mapping[str, Any] | None = None, filters: Sequence[Mapping[str, Any]] = (),
                 granularity: Granularity = "record", include: str = "ALL", skip: int = 0, limit: int = 10,
                 test_mode: bool = False) -> dict[str, Any]:
    """A ``beaconRequestBody``."""
    if granularity not in GRANULARITIES:
        raise InvalidQuery(f"granularity {granularity!r}: give one of {', '.join(GRANULARITIES)}")
    if include not in INCLUDE:
        raise InvalidQuery(f"result sets {include!r}: give one of {', '.join(INCLUDE)}")
    query: dict[str, Any] = {"requestedGranularity": granularity, "includeResultsetResponses": include,
                             "pagination": {"skip": skip, "limit": limit}}
    if request_parameters:
        query["requestParameters"] = dict(request_parameters)
    if filters:
        query["filters"] = [dict(f) for f in filters]
    if test_mode:
        query["testMode"] = True
    return {"meta": {"apiVersion": API_VERSION}, "query": query}


# -- reading the answer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultSet:
    """One dataset's answer (of one node, when federated)."""

    id: str
    exists: bool
    node: str | None = None
    set_type: str = "dataset"
    granularity: str | None = None
    count: int | None = None
    """None at boolean granularity: no count was given."""
    count_precision: str | None = None
    """``exact``, ``imprecise`` or ``rounded`` as the Beacon says; None when it does not say."""
    count_adjusted_to: int | None = None
    """A small count reported as this threshold instead of its value (1 to this)."""
    records: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    """The Beacon's own notes on it (genomebus: ``accessRights``, ``auditEvent`` of a record read, ``node``)."""


@dataclass(frozen=True)
class NodeStatus:
    """How one node answered a federated query."""

    node: str
    status: str
    url: str | None = None
    own: bool = False
    detail: str | None = None
    http_status: int | None = None
    elapsed_s: float | None = None
    exists: bool | None = None
    count: int | None = None
    granularity: str | None = None
    credentials_forwarded: bool | None = None


@dataclass(frozen=True)
class Answer:
    """A Beacon's answer, read: the summary, each result set, and each node's status when federated."""

    raw: dict[str, Any]
    exists: bool
    granularity: str
    count: int | None
    result_sets: list[ResultSet]
    nodes: list[NodeStatus]
    warnings: list[str]

    @property
    def federated(self) -> bool:
        return bool(self.nodes)


def read_answer(body: Mapping[str, Any]) -> Answer:
    """An ``Answer`` from a Beacon response document (plain or federated)."""
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    summary = body.get("responseSummary") if isinstance(body.get("responseSummary"), dict) else {}
    granularity = meta.get("returnedGranularity") if meta.get("returnedGranularity") in GRANULARITIES else "boolean"
    sets = (body.get("response") or {}).get("resultSets") if isinstance(body.get("response"), dict) else None
    info = body.get("info") if isinstance(body.get("info"), dict) else {}
    warnings = [_warning(w) for w in info.get("warnings") or () if w]
    return Answer(
        raw=dict(body), exists=summary.get("exists") is True, granularity=granularity,
        count=summary.get("numTotalResults") if granularity != "boolean" and _int(summary.get("numTotalResults"))
        else None,
        result_sets=[_result_set(rs, granularity) for rs in sets or () if isinstance(rs, dict)],
        nodes=[_node(n) for n in info.get("nodes") or () if isinstance(n, dict)] if info.get("federated") else [],
        warnings=warnings,
    )


def _warning(warning: Any) -> str:
    """A warning as one line: ``message`` of a ``{code, message}`` object (with its node when federated)."""
    if not isinstance(warning, dict):
        return str(warning)
    text = str(warning.get("message") or warning.get("code") or warning)
    return f"{warning['node']}: {text}" if warning.get("node") else text


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _result_set(rs: Mapping[str, Any], granularity: str) -> ResultSet:
    info = rs.get("info") if isinstance(rs.get("info"), dict) else {}

    def said(name: str) -> Any:
        return rs.get(name, info.get(name))

    own = said("returnedGranularity")
    level = own if own in GRANULARITIES else granularity
    adjusted = said("countAdjustedTo")
    if isinstance(adjusted, list):  # Beacon 2.x may give it as a list
        adjusted = next((a for a in adjusted if _int(a) or str(a).isdigit()), None)
    return ResultSet(
        id=str(rs.get("id", "")), exists=rs.get("exists") is True, node=info.get("node"),
        set_type=str(rs.get("setType") or "dataset"), granularity=level,
        count=rs.get("resultsCount") if level != "boolean" and _int(rs.get("resultsCount")) else None,
        count_precision=said("countPrecision") if isinstance(said("countPrecision"), str) else None,
        count_adjusted_to=int(adjusted) if adjusted is not None and str(adjusted).isdigit() else None,
        records=[r for r in rs.get("results") or () if isinstance(r, dict)] if level == "record" else [],
        info=dict(info),
    )


def _node(line: Mapping[str, Any]) -> NodeStatus:
    return NodeStatus(
        node=str(line.get("node")), status=str(line.get("status")), url=line.get("url"), own=line.get("self") is True,
        detail=line.get("detail"), http_status=line.get("httpStatus"), elapsed_s=line.get("elapsedSeconds"),
        exists=line.get("exists"), count=line.get("numTotalResults"), granularity=line.get("returnedGranularity"),
        credentials_forwarded=line.get("credentialsForwarded"),
    )


def error_detail(response: httpx.Response) -> str:
    """A Beacon error's ``errorMessage``, a problem's ``detail``, or the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("errorMessage"):
            return str(error["errorMessage"])
        if body.get("detail"):
            return str(body["detail"])
    return f"{response.status_code} {response.reason_phrase}"


# -- the client -------------------------------------------------------------------------------------------


class DiscoveryClient:
    """A session with a Beacon v2: this node's (``settings``) or another one (``beacon_url``)."""

    def __init__(self, settings: Settings | None = None, token: str | None = None, *, beacon_url: str | None = None,
                 http: httpx.AsyncClient | None = None, timeout: float | None = None,
                 journey: str | None = None) -> None:
        """``journey``: a W3C trace id sent as ``traceparent`` with every query (see ``AccessClient``)."""
        if beacon_url is None and settings is None:
            raise ValueError("give the node's settings or a Beacon URL")
        self.beacon_url = (beacon_url or f"{settings.gateway_url}/beacon/v2").rstrip("/")  # type: ignore[union-attr]
        deadline = settings.beacon_federation_deadline_s if settings is not None else 10.0
        self._own = http is None
        # a federated answer comes by the deadline; the rest is the network's and the node's own time
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout or deadline + 20.0, connect=10.0))
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        if journey is not None:
            from genomebus.producers.access import traceparent

            self.auth["traceparent"] = traceparent(journey)

    async def __aenter__(self) -> DiscoveryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own:
            await self.http.aclose()

    async def query(self, entry_type: str = "g_variants", *, variant: str | Mapping[str, Any] | None = None,
                    filters: Iterable[str | Mapping[str, Any]] = (), granularity: Granularity = "record",
                    include: str = "ALL", skip: int = 0, limit: int = 10, federated: bool = False,
                    include_descendant_terms: bool = True, test_mode: bool = False) -> Answer:
        """``POST /{entry_type}`` (or ``/federated/{entry_type}``) with the query written as ``parse_variant``
        and ``parse_filter`` read it (or already as Beacon ``requestParameters`` and filters)."""
        if entry_type not in ENTRY_TYPES:
            raise InvalidQuery(f"entry type {entry_type!r}: give one of {', '.join(ENTRY_TYPES)}")
        parameters = parse_variant(variant) if isinstance(variant, str) else variant
        body = request_body(
            request_parameters=parameters,
            filters=[parse_filter(f, include_descendant_terms=include_descendant_terms) if isinstance(f, str) else f
                     for f in filters],
            granularity=granularity, include=include, skip=skip, limit=limit, test_mode=test_mode)
        return read_answer(await self.post(entry_type, body, federated=federated))

    async def post(self, entry_type: str, body: Mapping[str, Any], *, federated: bool = False) -> dict[str, Any]:
        """The Beacon's JSON answer to ``body``, or ``BeaconRefused`` / ``GatewayUnavailable``."""
        url = f"{self.beacon_url}{'/federated' if federated else ''}/{entry_type}"
        try:
            response = await self.http.post(url, json=dict(body), headers=self.auth)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the Beacon at {self.beacon_url} does not answer ({type(exc).__name__})") \
                from exc
        if response.status_code >= 400:
            raise BeaconRefused(response.status_code, error_detail(response), response.headers.get("retry-after"))
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("responseSummary"), dict):
            raise BeaconRefused(response.status_code, f"{url} did not answer as a Beacon v2 does")
        return document

    async def federation(self) -> dict[str, Any]:
        """The nodes a federated query goes to (``GET /federated/``)."""
        try:
            response = await self.http.get(f"{self.beacon_url}/federated/", headers=self.auth)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the Beacon at {self.beacon_url} does not answer ({type(exc).__name__})") \
                from exc
        if response.status_code >= 400:
            raise BeaconRefused(response.status_code, error_detail(response), response.headers.get("retry-after"))
        return response.json()
