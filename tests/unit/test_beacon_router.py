"""The Beacon router over HTTP, with a fake index and a fake enforcement point: every framework endpoint and
every answer checked against the Beacon v2 schemas; granularity per caller; small counts; the budget; errors.

The fake index (``FakeIndex``) holds datasets and, per dataset, how many entries match any query, and
answers ``search`` as ``infra/discovery/query.py`` does (a match per dataset in scope, records only for
``records_for``), keeping every call. The fake enforcement point knows two logins (alice holds a grant for
dataset ``A``; bob none), refuses any other token, and keeps every dataset it was asked about.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from genomebus.gateway import problems
from genomebus.gateway.beacon_budget import QueryBudget
from genomebus.gateway.enforcement import Allowed, challenge
from genomebus.gateway.problems import Problem
from genomebus.gateway.routers import beacon
from genomebus.infra.discovery.query import DatasetMatch, IndexedDataset, QueryWarning, SearchResult
from genomebus.infra.identity import Principal
from genomebus.infra.settings import Settings
from tests import beacon_spec

ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}
SEQUENCE = {"referenceName": "21", "start": [10000062], "referenceBases": "A", "alternateBases": "G"}


def principal(user: str) -> Principal:
    return Principal(user_id=user, issuer="https://login.example.org", roles=frozenset({"researcher"}),
                     researcher=True, steward=False, auditor=False, operator=False, output_checker=False, dacs=frozenset(),
                     expires_at=datetime.now(UTC) + timedelta(hours=1))


@dataclass
class FakeEnforcer:
    grants: dict[str, set[str]] = field(default_factory=lambda: {"alice": {"A"}, "bob": set()})
    access: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[str | None, str]] = field(default_factory=list)
    """(user, dataset) of every ``authorize`` call: each would be an audit event."""
    audit_down: bool = False

    def user(self, request: Request) -> str | None:
        header = request.headers.get("authorization")
        return header.removeprefix("Bearer ") if header else None

    async def principal(self, request: Request) -> Principal:
        user = self.user(request)
        if user not in self.grants:
            raise Problem(401, "invalid-token", "the credential is not accepted: bad signature",
                          headers=challenge("invalid_token"))
        return principal(user)  # type: ignore[arg-type]

    async def authorize(self, request: Request, dataset_id: str) -> Allowed:
        user = self.user(request)
        self.asked.append((user, dataset_id))
        if self.audit_down:
            raise Problem(503, "audit-unavailable", "the access cannot be recorded right now")
        if self.access[dataset_id] == "public":
            return Allowed(dataset_id, None, None, "public", f"audit-{len(self.asked)}")
        if user is None:
            raise Problem(401, "credentials-required", "this data needs a bearer token")
        if dataset_id not in self.grants[user]:
            raise Problem(403, "no-grant", f"you hold no active grant for {dataset_id}")
        return Allowed(dataset_id, user, "grant-1", "bearer", f"audit-{len(self.asked)}")


def record(entry_type: str, dataset: str, n: int) -> dict[str, Any]:
    """A record of the default model (each checked against its schema in the tests)."""
    ident = f"{dataset}-{n}"
    return {
        "g_variants": {"variantInternalId": f"21-{10000063 + n}-A-G", "variation": {
            "referenceBases": "A", "alternateBases": "G", "variantType": "SNP",
            "location": {"type": "SequenceLocation", "sequence_id": "refseq:NC_000021.9",
                         "interval": {"type": "SequenceInterval", "start": {"type": "Number", "value": 10000062 + n},
                                      "end": {"type": "Number", "value": 10000063 + n}}}},
            "caseLevelData": [{"biosampleId": f"S-{ident}", "individualId": f"I-{ident}"}]},
        "individuals": {"id": f"I-{ident}", "sex": {"id": "NCIT:C16576", "label": "female"}},
        "biosamples": {"id": f"S-{ident}", "biosampleStatus": {"id": "NCIT:C17998", "label": "unknown"},
                       "sampleOriginType": {"id": "NCIT:C17998", "label": "unknown"}},
        "runs": {"id": f"R-{ident}", "biosampleId": f"S-{ident}", "runDate": "2024-06-07"},
        "analyses": {"id": f"AN-{ident}", "analysisDate": "2024-06-07", "pipelineName": "bcbio"},
        "datasets": {"id": dataset, "name": f"Dataset {dataset}"},
    }[entry_type]


@dataclass
class FakeIndex:
    access: dict[str, str]
    counts: dict[str, int]
    """Dataset → how many entries match any query there (entry ids: held where the count is not 0)."""
    warnings: list[QueryWarning] = field(default_factory=list)
    searches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def datasets(self) -> list[IndexedDataset]:
        return [IndexedDataset(d, rights, "GRCh38", 10, 3, 3, 3, record("datasets", d, 0))
                for d, rights in sorted(self.access.items())]

    async def search(self, entry_type: str, *, variant: Any = None, filters: Any = (), dataset_ids: Any = None,
                     entry_id: str | None = None, linked: tuple[str, str] | None = None, records_for: Any = (),
                     skip: int = 0, limit: int = 10) -> SearchResult:
        self.searches.append((entry_type, {"variant": variant, "filters": tuple(filters), "dataset_ids": dataset_ids,
                                           "entry_id": entry_id, "linked": linked, "records_for": tuple(records_for),
                                           "skip": skip, "limit": limit}))
        scope = [d for d in sorted(self.access) if dataset_ids is None or d in dataset_ids]
        if linked is not None and linked[0] == "datasets":
            scope = [d for d in scope if d == linked[1]]
        if entry_type == "datasets" and entry_id is not None:
            scope = [d for d in scope if d == entry_id]
        matches = []
        for d in scope:
            count = self.counts.get(d, 0)
            if entry_type == "datasets":
                count = min(count, 1)
            elif entry_id is not None:
                count = min(count, 1)
            records = [record(entry_type, d, n) for n in range(skip, min(count, skip + limit))] \
                if d in records_for else []
            matches.append(DatasetMatch(d, self.access[d], count, records))
        return SearchResult(matches, list(self.warnings))

    async def filtering_terms(self) -> list[dict[str, Any]]:
        return [{"type": "Human Phenotype Ontology", "id": "HP:0001250", "label": "Seizure", "scopes": ["individual"]},
                {"type": "NCI Thesaurus", "id": "NCIT:C16576", "label": "female", "scopes": ["individual"]},
                {"type": "alphanumeric", "id": "alleleFrequency", "label": "allele frequency",
                 "scopes": ["genomicVariant"]}]


ACCESS = {"A": "controlled", "B": "controlled", "P": "public"}


@functools.cache
def _app() -> FastAPI:
    """One app for the module (its routes are built on the first request, which takes a while); each test
    gives it its own state."""
    app = FastAPI()
    problems.install(app)
    app.include_router(beacon.router)
    return app


@contextlib.asynccontextmanager
async def beacon_app(counts: dict[str, int] | None = None, *, access: dict[str, str] | None = None,
                     settings: Settings | None = None, enforcer: FakeEnforcer | None = None
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeIndex, FakeEnforcer]]:
    access = access or ACCESS
    index = FakeIndex(access, counts if counts is not None else {"A": 3, "B": 27, "P": 12})
    enforcer = enforcer or FakeEnforcer()
    enforcer.access = access
    app = _app()
    app.state.settings = settings or Settings(node_id="FI")
    app.state.discovery = index
    app.state.enforcer = enforcer
    app.state.beacon_budget = None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fi.test") as client:
        yield client, index, enforcer


def query(**part: Any) -> dict[str, Any]:
    return {"meta": {"apiVersion": "v2.0.0"}, "query": part}


def sets(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in body["response"]["resultSets"]}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert beacon_spec.response_errors(body) == []
    return body


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert beacon_spec.errors(beacon_spec.RESPONSES["error"], body) == []
    assert body["error"]["errorCode"] == body["status"] == status
    assert body["error"]["errorMessage"] == body["detail"]
    return body


# -- framework endpoints ----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "kind"), [
    ("/beacon/v2/", "info"), ("/beacon/v2", "info"), ("/beacon/v2/info", "info"),
    ("/beacon/v2/service-info", "service-info"), ("/beacon/v2/configuration", "configuration"),
    ("/beacon/v2/map", "map"), ("/beacon/v2/entry_types", "entry_types"),
    ("/beacon/v2/filtering_terms", "filtering_terms"), ("/beacon/v2/individuals/filtering_terms", "filtering_terms"),
    ("/beacon/v2/datasets/A/filtering_terms", "filtering_terms")])
async def test_every_framework_endpoint_matches_its_schema(path, kind):
    async with beacon_app() as (client, index, enforcer):
        response = await client.get(path)
    assert response.status_code == 200, response.text
    assert beacon_spec.errors(beacon_spec.RESPONSES[kind], response.json()) == []
    assert enforcer.asked == [] and index.searches == []


async def test_the_map_lists_every_endpoint_this_beacon_serves():
    async with beacon_app() as (client, index, _):
        beacon_map = (await client.get("/beacon/v2/map")).json()["response"]
        urls = [s["rootUrl"] for s in beacon_map["endpointSets"].values()]
        urls += [s["singleEntryUrl"].replace("{id}", "A") for s in beacon_map["endpointSets"].values()]
        urls += [e["url"].replace("{id}", "A") for s in beacon_map["endpointSets"].values()
                 for e in s["endpoints"].values()]
        urls += [s["filteringTermsUrl"].replace("{id}", "A") for s in beacon_map["endpointSets"].values()
                 if "filteringTermsUrl" in s]
        assert len(urls) == 6 + 6 + 13 + 2
        for url in urls:
            assert url.startswith("http://fi.test/beacon/v2/")
            for method in ("GET", "POST"):
                response = await client.request(method, url, **({"json": {}} if method == "POST" else {}))
                assert response.status_code == 200, (method, url, response.text)


async def test_configuration_names_the_entry_types_and_what_is_not_supported():
    async with beacon_app() as (client, _, _):
        configuration = (await client.get("/beacon/v2/configuration")).json()["response"]
        entry_types = (await client.get("/beacon/v2/entry_types")).json()["response"]["entryTypes"]
    assert set(configuration["entryTypes"]) == set(entry_types) == {
        "genomicVariant", "individual", "biosample", "run", "analysis", "dataset"}
    unsupported = configuration["entryTypes"]["genomicVariant"]["info"]["unsupportedRequestParameters"]
    assert {u["name"] for u in unsupported} == {"geneId", "aminoacidChange", "mateName"}


async def test_filtering_terms_are_paged_and_scoped():
    async with beacon_app() as (client, _, _):
        everything = (await client.get("/beacon/v2/filtering_terms")).json()["response"]
        page = (await client.get("/beacon/v2/filtering_terms", params={"skip": 1, "limit": 1})).json()["response"]
        individual = (await client.get("/beacon/v2/individuals/filtering_terms")).json()["response"]
        missing = await client.get("/beacon/v2/datasets/NOPE/filtering_terms")
    assert [t["id"] for t in everything["filteringTerms"]] == ["HP:0001250", "NCIT:C16576", "alleleFrequency"]
    assert [r["id"] for r in everything["resources"]] == ["hp", "ncit"]
    assert [t["id"] for t in page["filteringTerms"]] == ["NCIT:C16576"]
    assert [t["id"] for t in individual["filteringTerms"]] == ["HP:0001250", "NCIT:C16576"]
    refused(missing, 404)


# -- granularity by caller --------------------------------------------------------------------------

async def test_an_anonymous_caller_gets_booleans_and_a_public_datasets_count_and_is_never_audited():
    async with beacon_app() as (client, index, enforcer):
        body = ok(await client.post("/beacon/v2/g_variants",
                                    json=query(requestParameters=SEQUENCE, requestedGranularity="count",
                                               includeResultsetResponses="ALL")))
    assert body["meta"]["returnedGranularity"] == "count"
    found = sets(body)
    assert found["A"] == {"id": "A", "setType": "dataset", "exists": True,
                          "info": {"returnedGranularity": "boolean", "accessRights": "controlled"}}
    assert "resultsCount" not in found["B"]
    assert (found["P"]["resultsCount"], found["P"]["countPrecision"]) == (12, "exact")  # public: exact
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 12, "countPrecision": "imprecise"}
    assert enforcer.asked == []  # counts need no record access: nothing to audit
    assert index.searches[0][1]["records_for"] == ()


async def test_an_anonymous_record_request_reads_only_public_records_and_audits_only_them():
    async with beacon_app() as (client, index, enforcer):
        mixed = ok(await client.post("/beacon/v2/individuals", json=query(requestedGranularity="record")))
        public = ok(await client.post("/beacon/v2/individuals", json=query(
            requestedGranularity="record", requestParameters={"datasets": {"datasetIds": ["P"]}})))
    # Beside controlled datasets answered by a boolean, the response is a count one (Beacon 2.0 needs a count in
    # every result set of a record response); asked alone, the public dataset gives its records.
    assert mixed["meta"]["returnedGranularity"] == "count"
    assert public["meta"]["returnedGranularity"] == "record"
    assert [r["id"] for r in sets(public)["P"]["results"]] == [f"I-P-{n}" for n in range(10)]
    assert sets(public)["P"]["info"]["auditEvent"] == "audit-2"
    assert sets(public)["P"]["resultsHandovers"][0]["url"] == "http://fi.test/ga4gh/drs/v1/objects/P"
    assert enforcer.asked == [(None, "P"), (None, "P")]  # never asked about A or B for an anonymous caller
    assert index.searches[1][1]["records_for"] == ("P",)


async def test_a_researcher_without_a_grant_gets_counts_never_exact_when_small():
    async with beacon_app({"A": 3, "B": 27, "P": 0}) as (client, index, enforcer):
        body = ok(await client.post("/beacon/v2/g_variants", headers=BOB, json=query(
            requestParameters=SEQUENCE, requestedGranularity="record", includeResultsetResponses="ALL")))
    found = sets(body)
    assert body["meta"]["returnedGranularity"] == "record"  # the public dataset's (here: none found)
    assert (found["A"]["resultsCount"], found["A"]["countPrecision"], found["A"]["countAdjustedTo"]) == \
        (5, "imprecise", [5])
    assert (found["B"]["resultsCount"], found["B"]["countPrecision"]) == (30, "rounded")
    assert (found["P"]["resultsCount"], found["P"]["exists"]) == (0, False)
    assert [found[d]["info"]["returnedGranularity"] for d in "ABP"] == ["count", "count", "record"]
    assert all(s["results"] == [] for s in found.values())
    assert body["responseSummary"]["numTotalResults"] == 35
    assert sorted(enforcer.asked) == [("bob", "A"), ("bob", "B"), ("bob", "P")]  # each refusal audited
    assert "caseLevelData" not in str(body) and "I-A" not in str(body)


async def test_a_grant_holder_gets_the_records_of_that_dataset_exactly_and_counts_elsewhere():
    async with beacon_app({"A": 3, "B": 27, "P": 12}) as (client, index, enforcer):
        body = ok(await client.post("/beacon/v2/g_variants", headers=ALICE, json=query(
            requestParameters=SEQUENCE, requestedGranularity="record")))
    found = sets(body)
    assert body["meta"]["returnedGranularity"] == "record"
    assert found["A"]["resultsCount"] == 3 and found["A"]["countPrecision"] == "exact"
    assert [r["variantInternalId"] for r in found["A"]["results"]] == ["21-10000063-A-G", "21-10000064-A-G",
                                                                       "21-10000065-A-G"]
    assert found["A"]["results"][0]["caseLevelData"] == [{"biosampleId": "S-A-0", "individualId": "I-A-0"}]
    for item in found["A"]["results"]:
        assert beacon_spec.record_errors("g_variants", item) == []
    assert found["A"]["info"]["returnedGranularity"] == "record" and found["A"]["info"]["auditEvent"]
    assert (found["B"]["resultsCount"], found["B"]["results"], found["B"]["info"]["returnedGranularity"]) == \
        (30, [], "count")
    assert index.searches[0][1]["records_for"] == ("A", "P")


async def test_the_granularity_returned_is_never_more_than_asked():
    async with beacon_app() as (client, _, enforcer):
        body = ok(await client.get("/beacon/v2/individuals", headers=ALICE))
    assert body["meta"]["returnedGranularity"] == "boolean"
    assert body["responseSummary"] == {"exists": True}
    assert enforcer.asked == []


@pytest.mark.parametrize("entry_type", ["g_variants", "individuals", "biosamples", "runs", "analyses"])
async def test_records_of_every_entry_type_match_their_default_schema(entry_type):
    async with beacon_app() as (client, _, _):
        body = ok(await client.post(f"/beacon/v2/{entry_type}", headers=ALICE,
                                    json=query(requestedGranularity="record")))
    assert body["meta"]["returnedSchemas"][0]["entityType"] == beacon.ENTRY_TYPES[entry_type].id
    results = sets(body)["A"]["results"]
    assert len(results) == 3
    for item in results:
        assert beacon_spec.record_errors(entry_type, item) == []


async def test_an_audit_that_cannot_be_written_is_a_downgrade_with_a_warning():
    async with beacon_app(enforcer=FakeEnforcer(audit_down=True)) as (client, _, _):
        body = ok(await client.post("/beacon/v2/individuals", headers=ALICE, json=query(requestedGranularity="record")))
    assert body["meta"]["returnedGranularity"] == "count"
    assert {w["code"] for w in body["info"]["warnings"]} == {"records_unavailable"}


# -- one person -------------------------------------------------------------------------------------

async def test_a_query_naming_one_individual_is_answered_only_where_records_may_be_read():
    async with beacon_app({"A": 3, "B": 27, "P": 0}) as (client, index, enforcer):
        anonymous = await client.get("/beacon/v2/individuals/I-A-0/g_variants",
                                     params={"referenceName": "21", "start": "10000062", "alternateBases": "G"})
        researcher = await client.get("/beacon/v2/individuals/I-A-0/g_variants", headers=BOB,
                                      params={"referenceName": "21", "start": "10000062", "alternateBases": "G"})
        holder = ok(await client.get("/beacon/v2/individuals/I-A-0/g_variants", headers=ALICE,
                                     params={"referenceName": "21", "start": "10000062", "alternateBases": "G",
                                             "requestedGranularity": "count"}))
    # Public P holds no I-A-0; the anonymous caller and bob may not read A or B: those are not asked at all.
    assert "not asked" in refused(anonymous, 404)["detail"]
    assert "not asked" in refused(researcher, 404)["detail"]
    assert {s["id"] for s in holder["response"]["resultSets"]} == {"A"}
    assert sets(holder)["A"]["resultsCount"] == 3 and sets(holder)["A"]["countPrecision"] == "exact"
    assert [w["id"] for w in holder["info"]["withheldDatasets"]] == ["B"]
    searched = [s for s in index.searches if s[1]["linked"] == ("individuals", "I-A-0")]
    assert [s[1]["dataset_ids"] for s in searched] == [("P",), ("P",), ("A", "P")]  # anonymous, bob, alice
    assert ("alice", "B") in enforcer.asked  # the refusal is audited like any record access


# -- ids and links ------------------------------------------------------------------------------------

async def test_an_unknown_entry_or_link_is_a_404_and_a_known_one_is_answered():
    async with beacon_app({"A": 0, "B": 2, "P": 0}) as (client, _, _):
        known = ok(await client.get("/beacon/v2/g_variants/21-10000063-A-G", params={"requestedGranularity": "count"}))
        unknown = await client.get("/beacon/v2/g_variants/21-1-A-G")
        no_dataset = await client.post("/beacon/v2/datasets/NOPE/g_variants", json={})
        dataset = ok(await client.get("/beacon/v2/datasets/B"))
        no_such = await client.get("/beacon/v2/datasets/NOPE")
        linked = ok(await client.get("/beacon/v2/datasets/B/individuals", params={"includeResultsetResponses": "ALL"}))
    assert sets(known)["B"]["exists"] is True
    assert {s["id"] for s in linked["response"]["resultSets"]} == {"B"}
    assert dataset["response"]["collections"] == [{"id": "B", "name": "Dataset B"}]
    for response in (no_dataset, no_such):
        refused(response, 404)
    async with beacon_app({"A": 0, "B": 0, "P": 0}) as (client, _, _):
        refused(await client.get("/beacon/v2/g_variants/21-1-A-G"), 404)
        refused(await client.get("/beacon/v2/g_variants/21-1-A-G/individuals"), 404)
    assert unknown.status_code == 200  # this fake holds every id where anything matches


async def test_an_entry_id_must_be_printable_text():
    async with beacon_app() as (client, _, _):
        refused(await client.get("/beacon/v2/individuals/%20x"), 400)
        refused(await client.get("/beacon/v2/individuals/" + "x" * 300), 400)


# -- requests ---------------------------------------------------------------------------------------

async def test_get_and_post_ask_the_index_the_same_question():
    async with beacon_app() as (client, index, _):
        ok(await client.get("/beacon/v2/g_variants", params=[
            ("referenceName", "21"), ("start", "10000062"), ("referenceBases", "A"), ("alternateBases", "G"),
            ("filters", "HP:0001250,NCIT:C16576"), ("skip", "2"), ("limit", "5"), ("requestedGranularity", "count"),
            ("datasetIds", "A")]))
        ok(await client.post("/beacon/v2/g_variants", json=query(
            requestParameters={"g_variant": SEQUENCE, "datasets": {"datasetIds": ["A"]}},
            filters=[{"id": "HP:0001250"}, {"id": "NCIT:C16576"}], pagination={"skip": 2, "limit": 5},
            requestedGranularity="count")))
    (_, got), (_, posted) = index.searches
    assert got == posted
    assert (got["skip"], got["limit"], got["dataset_ids"]) == (10, 5, ("A",))


async def test_run_query_is_the_same_answer_in_process():
    async with beacon_app() as (client, _, _):
        over_http = ok(await client.post("/beacon/v2/g_variants", json=query(requestParameters=SEQUENCE)))
        app = client._transport.app  # type: ignore[attr-defined]
        request = Request({"type": "http", "method": "POST", "path": "/beacon/v2/federated/g_variants",
                           "headers": [], "query_string": b"", "app": app, "client": ("127.0.0.1", 1)})
        in_process = await beacon.run_query(request, "g_variants", query(requestParameters=SEQUENCE))
    assert in_process == over_http


@pytest.mark.parametrize(("sent", "says"), [
    ({"query": {"requestParameters": {"start": [10000062]}}}, "referenceName"),
    ({"query": {"requestedGranularity": "all"}}, "requestedGranularity"),
    ({"query": {"requestParameters": {"referenceName": "21", "start": [1], "end": [99_000_000]}}}, "at most"),
    ({"query": {"requestParameters": {"geneId": "BRCA2"}}}, "geneId"),
    ([1, 2], "body"),
])
async def test_a_query_this_beacon_cannot_answer_is_a_400_in_the_beacon_error_shape(sent, says):
    async with beacon_app() as (client, index, _):
        body = refused(await client.post("/beacon/v2/g_variants", json=sent), 400)
    assert says in body["error"]["errorMessage"]
    assert index.searches == []


@pytest.mark.parametrize("params", [{"start": "x"}, {"limit": "-1"}, {"skip": str(10**9)},
                                    {"requestedGranularity": "all"}, {"referenceBases": "XYZ"},
                                    {"referenceName": "21", "strat": "100"}, {"filters": "1"}])
async def test_a_bad_query_string_is_a_400(params):
    async with beacon_app() as (client, _, _):
        body = refused(await client.get("/beacon/v2/g_variants", params=params), 400)
    if "strat" in params:  # a typo is refused, never ignored (the query would be wider than meant)
        assert "no query parameter strat" in body["detail"]


async def test_unknown_filters_are_reported_not_ignored():
    async with beacon_app() as (client, index, _):
        index.warnings = [QueryWarning("unknown_filter", "filter 'XX:1' is not a term of this beacon", "XX:1")]
        body = ok(await client.get("/beacon/v2/individuals", params={"filters": "XX:1"}))
    assert body["info"]["warnings"] == [{"code": "unknown_filter", "message": "filter 'XX:1' is not a term of this "
                                         "beacon", "filterId": "XX:1"}]


async def test_test_mode_reads_no_data_and_charges_no_budget():
    settings = Settings(node_id="FI", beacon_budget_anonymous=1)
    async with beacon_app(settings=settings) as (client, index, enforcer):
        for _ in range(3):
            body = ok(await client.post("/beacon/v2/g_variants", json=query(
                testMode=True, requestedGranularity="record", includeResultsetResponses="ALL")))
        assert body["meta"]["testMode"] is True and body["meta"]["returnedGranularity"] == "record"
        assert all(s["exists"] is False and s["results"] == [] for s in body["response"]["resultSets"])
        assert index.searches == [] and enforcer.asked == []
        ok(await client.post("/beacon/v2/g_variants", json=query()))


# -- credentials and the budget ---------------------------------------------------------------------

async def test_a_bad_token_is_a_401_not_an_anonymous_answer():
    async with beacon_app() as (client, index, _):
        response = await client.get("/beacon/v2/g_variants", headers={"Authorization": "Bearer forged"})
        malformed = await client.get("/beacon/v2/g_variants", headers={"Authorization": "Basic eDp5"})
    body = refused(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert body["type"].endswith("/invalid-token")
    refused(malformed, 401)
    assert index.searches == []


async def test_the_budget_answers_429_with_retry_after_per_ip_anonymous_and_per_user():
    settings = Settings(node_id="FI", beacon_budget_anonymous=2, beacon_budget_user=3, beacon_budget_ip=6,
                        beacon_budget_window_s=600)
    async with beacon_app(settings=settings) as (client, index, _):
        for _ in range(2):
            ok(await client.get("/beacon/v2/individuals"))
        spent = await client.get("/beacon/v2/individuals")
        body = refused(spent, 429)
        assert 1 <= int(spent.headers["retry-after"]) <= 600
        assert "without a login" in body["detail"]
        assert body["meta"]["receivedRequestSummary"]["requestedGranularity"] == "boolean"
        for _ in range(3):  # a login has its own budget...
            ok(await client.get("/beacon/v2/individuals", headers=ALICE))
        assert "this user" in refused(await client.get("/beacon/v2/individuals", headers=ALICE), 429)["detail"]
        ok(await client.get("/beacon/v2/individuals", headers=BOB))
        # ...but every caller from one address shares its ceiling: 2 + 3 + 1 = 6 charged
        assert "this address" in refused(await client.get("/beacon/v2/individuals", headers=BOB), 429)["detail"]
        assert len(index.searches) == 6  # a refused query reads nothing


async def test_a_400_costs_no_budget_but_a_404_does():
    settings = Settings(node_id="FI", beacon_budget_anonymous=1)
    async with beacon_app({"A": 0, "B": 0, "P": 0}, settings=settings) as (client, _, _):
        for _ in range(3):
            refused(await client.get("/beacon/v2/g_variants", params={"start": "1", "alternateBases": "A"}), 400)
        refused(await client.get("/beacon/v2/g_variants/21-1-A-G"), 404)
        refused(await client.get("/beacon/v2/g_variants/21-1-A-G"), 429)


async def test_the_budget_is_per_window():
    now = [0.0]
    settings = Settings(node_id="FI", beacon_budget_anonymous=1, beacon_budget_window_s=60)
    async with beacon_app(settings=settings) as (client, _, _):
        client._transport.app.state.beacon_budget = QueryBudget(60, clock=lambda: now[0])  # type: ignore[attr-defined]
        ok(await client.get("/beacon/v2/individuals"))
        refused(await client.get("/beacon/v2/individuals"), 429)
        now[0] = 60.0
        ok(await client.get("/beacon/v2/individuals"))


async def test_entry_types_and_cross_links_the_model_does_not_define_are_404s():
    async with beacon_app() as (client, index, _):
        for path in ("/beacon/v2/cohorts", "/beacon/v2/cohorts/C1", "/beacon/v2/g_variants/21-1-A-G/runs",
                     "/beacon/v2/runs/R1/individuals", "/beacon/v2/cohorts/C1/g_variants"):
            for method in ("GET", "POST"):
                response = await client.request(method, path, **({"json": {}} if method == "POST" else {}))
                assert "no entry type" in refused(response, 404)["detail"] or "no cross-link" in response.text
    assert index.searches == []
