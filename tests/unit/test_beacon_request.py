"""Beacon requests as the router reads them: bodies and query strings, what is refused, the summary echoed."""

from __future__ import annotations

from typing import Any

import pytest

from genomebus.gateway.beacon_request import body_from_parameters, read
from genomebus.gateway.problems import Problem
from genomebus.infra.discovery.query import Filter, VariantQuery
from genomebus.infra.settings import Settings
from tests import beacon_spec

SETTINGS = Settings(node_id="FI", beacon_max_limit=50, beacon_range_max_bp=1_000_000)
SEQUENCE = {"referenceName": "21", "start": [10000062], "referenceBases": "A", "alternateBases": "G"}


def body(**query: Any) -> dict[str, Any]:
    return {"meta": {"apiVersion": "v2.0.0"}, "query": query}


def summary_errors(summary: dict[str, Any]) -> list[str]:
    return beacon_spec.errors("framework/json/responses/sections/beaconReceivedRequestSummary.json", summary)


def test_a_sequence_query_flat_or_grouped_is_the_same_query():
    flat = read(body(requestParameters=SEQUENCE), entry_type="g_variants", settings=SETTINGS)
    grouped = read(body(requestParameters={"g_variant": SEQUENCE}), entry_type="g_variants", settings=SETTINGS)
    assert flat.variant == grouped.variant == VariantQuery(reference_name="21", start=(10000062,),
                                                           reference_bases="A", alternate_bases="G")
    assert flat.summary() == grouped.summary()
    assert flat.summary()["requestParameters"] == {"g_variant": SEQUENCE}
    assert summary_errors(flat.summary()) == []


def test_defaults_follow_the_spec():
    asked = read({}, entry_type="individuals", settings=SETTINGS)
    assert (asked.granularity, asked.include, asked.skip, asked.limit, asked.test_mode) == \
        ("boolean", "HIT", 0, 10, False)
    assert asked.variant is None and asked.filters == () and asked.dataset_ids is None
    assert read(None, entry_type="datasets", settings=SETTINGS).granularity == "record"  # the public collection
    assert summary_errors(asked.summary()) == []


def test_skip_counts_pages_and_limit_is_bounded_by_the_node():
    asked = read(body(pagination={"skip": 3, "limit": 20}), entry_type="individuals", settings=SETTINGS)
    assert (asked.skip, asked.limit, asked.offset) == (3, 20, 60)
    assert read(body(pagination={"limit": 0}), entry_type="individuals", settings=SETTINGS).limit == 50
    assert read(body(pagination={"limit": 5000}), entry_type="individuals", settings=SETTINGS).limit == 50


def test_filters_objects_and_terms():
    asked = read(body(filters=[{"id": "HP:0001250", "includeDescendantTerms": False}, "NCIT:C16576",
                               {"id": "alleleFrequency", "operator": "<", "value": "0.01"}]),
                 entry_type="g_variants", settings=SETTINGS)
    assert asked.filters == (Filter("HP:0001250", include_descendant_terms=False), Filter("NCIT:C16576"),
                             Filter("alleleFrequency", "<", "0.01"))
    assert asked.summary()["filters"] == ["HP:0001250", "NCIT:C16576", "alleleFrequency<0.01"]
    assert summary_errors(asked.summary()) == []


def test_datasets_asked_for():
    for parameters in ({"datasets": {"datasetIds": ["A", "B"]}}, {"datasetIds": ["A", "B"]}):
        asked = read(body(requestParameters=parameters), entry_type="individuals", settings=SETTINGS)
        assert asked.dataset_ids == ("A", "B")
        assert asked.summary()["requestParameters"] == {"datasets": {"datasetIds": ["A", "B"]}}


@pytest.mark.parametrize(("sent", "says"), [
    ("not a body", "beaconRequestBody"),
    ({"query": {"pagination": {"skip": "1"}}}, "query.pagination.skip"),
    ({"query": {"pagination": {"limit": -1}}}, "query.pagination.limit"),
    ({"query": {"requestedGranularity": "everything"}}, "query.requestedGranularity"),
    ({"query": {"includeResultsetResponses": "SOME"}}, "query.includeResultsetResponses"),
    ({"query": {"testMode": "true"}}, "query.testMode"),
    ({"meta": {"apiVersion": 2}}, "meta.apiVersion"),
    ({"query": {"filters": [{"operator": "="}]}}, "query.filters"),
    ({"query": {"filters": [{"id": "x", "operator": "~", "value": "1"}]}}, "query.filters"),
    ({"query": {"requestParameters": {"chromosome": "21"}}}, "chromosome"),
    ({"query": {"requestParameters": {"g_variant": {"chrom": "21"}}}}, "g_variant.chrom"),
    ({"query": {"requestParameters": {"g_variant": "21"}}}, "g_variant"),
    ({"query": {"requestParameters": {"datasets": {"ids": ["A"]}}}}, "datasetIds"),
    ({"query": {"requestParameters": {"start": [5]}}}, "referenceName"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": [2**40], "end": [2**40 + 1]}}}, "start"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": "5,6", "end": [7, 8]}}}, "start"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": [1, 2, 3]}}}, "start"),
    ({"query": {"requestParameters": {"datasetIds": []}}}, "datasetIds"),
    ({"query": {"requestParameters": {"datasetIds": ["A"], "datasets": {"datasetIds": ["B"]}}}}, "twice"),
    ({"query": {"requestParameters": {"referenceName": "1", "g_variant": {"referenceName": "2"}}}}, "both"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": [10], "end": [5]}}}, "greater than start"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": [0], "end": [2_000_000]}}}, "at most"),
    ({"query": {"requestParameters": {"geneId": "BRCA1"}}}, "geneId is not supported"),
    ({"query": {"requestParameters": {"referenceName": "1", "start": [5], "alternateBases": "X"}}}, "alternateBases"),
    ({"query": {"requestParameters": {"referenceName": "1\u0000", "start": [5], "alternateBases": "A"}}}, "NUL"),
])
def test_what_cannot_be_answered_as_asked_is_a_400_saying_why(sent, says):
    with pytest.raises(Problem) as refused:
        read(sent, entry_type="g_variants", settings=SETTINGS)
    assert refused.value.status == 400 and refused.value.code == "invalid-request"
    assert says in refused.value.detail


def test_a_query_naming_one_person():
    def names(entry_type: str, **kw: Any) -> bool:
        filters = kw.pop("filters", [])
        return read(body(filters=filters), entry_type=entry_type, settings=SETTINGS, **kw).names_one_person

    assert names("individuals", entry_id="I1")
    assert names("g_variants", linked=("individuals", "I1"))
    assert names("g_variants", linked=("biosamples", "S1"))
    assert names("g_variants", linked=("runs", "GDI-FI-FILE-00000001"))
    assert names("g_variants", filters=[{"id": "id", "value": "I1", "scope": "individuals"}])
    assert names("individuals", filters=[{"id": "id", "operator": "=", "value": "I%"}])
    assert names("g_variants", filters=[{"id": "individualId", "value": "I1"}])
    assert not names("g_variants", entry_id="21-100-A-G")
    assert not names("individuals", linked=("g_variants", "21-100-A-G"))
    assert not names("g_variants", linked=("datasets", "D1"))
    assert not names("individuals", filters=["NCIT:C16576", {"id": "sex", "value": "female"}])
    assert not names("g_variants", filters=[{"id": "id", "value": "21-100-A-G"}])


def test_a_query_string_is_read_as_its_body():
    sent = body_from_parameters(
        variant={"referenceName": "21", "start": ["10000000", "10000100"], "end": ["10000050,10000200"],
                 "alternateBases": None},
        filters=["HP:0001250,NCIT:C16576", "alleleFrequency<0.01"], dataset_ids=["A,B"], skip=1, limit=5,
        granularity="count", include="ALL", test_mode=False, requested_schema="ga4gh-beacon-variant-v2.0.0")
    assert sent == {
        "meta": {"apiVersion": "v2.0.0", "requestedSchemas": [{"schema": "ga4gh-beacon-variant-v2.0.0"}]},
        "query": {"requestParameters": {"referenceName": "21", "start": [10000000, 10000100],
                                        "end": [10000050, 10000200], "datasetIds": ["A", "B"]},
                  "filters": ["HP:0001250", "NCIT:C16576", "alleleFrequency<0.01"],
                  "pagination": {"skip": 1, "limit": 5}, "requestedGranularity": "count",
                  "includeResultsetResponses": "ALL", "testMode": False}}
    asked = read(sent, entry_type="g_variants", settings=SETTINGS)
    assert asked.variant.kind() == "bracket"
    assert asked.filters[2] == Filter("alleleFrequency", "<", "0.01")
    assert summary_errors(asked.summary()) == []
