"""Beacon answers: each dataset's granularity, the counts shown, result sets and the response they make,
every response checked against the Beacon v2 framework schemas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomebus.gateway import beacon_response as answers
from genomebus.gateway.beacon_request import BeaconRequest
from genomebus.gateway.beacon_response import Counting, DatasetAnswer, shown_count
from tests import beacon_spec

COUNTING = Counting(threshold=5, rounding=10)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(count=st.integers(min_value=1, max_value=10**6), threshold=st.integers(min_value=1, max_value=50),
       rounding=st.integers(min_value=1, max_value=100))
def test_a_count_without_record_access_is_never_an_exact_small_one(count, threshold, rounding):
    shown = shown_count(count, exact=False, threshold=threshold, rounding=rounding)
    if count <= threshold:  # every count from 1 to the threshold looks the same
        assert (shown.value, shown.precision, shown.adjusted_to) == (threshold, "imprecise", (threshold,))
    else:
        assert shown.value >= count and shown.value % rounding == 0 and shown.value - count < rounding
        assert shown.precision == ("exact" if rounding == 1 else "rounded")
    assert shown.value >= threshold  # so never below the threshold: no small count at all


@pytest.mark.parametrize(("count", "expected"), [
    (0, (0, "exact")), (1, (5, "imprecise")), (4, (5, "imprecise")), (5, (5, "imprecise")),
    (6, (10, "rounded")), (10, (10, "rounded")), (11, (20, "rounded")), (1234, (1240, "rounded"))])
def test_counts_shown_to_a_caller_without_record_access(count, expected):
    shown = shown_count(count, exact=False, threshold=5, rounding=10)
    assert (shown.value, shown.precision) == expected


def test_record_access_shows_the_exact_count():
    assert shown_count(3, exact=True, threshold=5, rounding=10) == answers.ShownCount(3, "exact")


@pytest.mark.parametrize(("requested", "public", "authenticated", "record", "expected"), [
    ("record", False, False, False, "boolean"),   # anonymous, controlled
    ("record", True, False, True, "record"),      # anyone, public
    ("count", True, False, True, "count"),        # never more than asked
    ("record", False, True, False, "count"),      # a researcher without a grant
    ("record", False, True, True, "record"),      # a grant holder
    ("boolean", False, True, True, "boolean"),
])
def test_each_dataset_is_answered_at_what_the_caller_may_see(requested, public, authenticated, record, expected):
    assert answers.dataset_granularity(requested, public=public, authenticated=authenticated,
                                       record_allowed=record) == expected


def test_a_response_is_never_a_record_one_beside_a_boolean_only_dataset():
    assert answers.response_granularity("record", ["record", "count"]) == "record"
    assert answers.response_granularity("record", ["record", "boolean"]) == "count"
    assert answers.response_granularity("record", ["boolean"]) == "boolean"
    assert answers.response_granularity("record", []) == "count"
    assert answers.response_granularity("boolean", []) == "boolean"


def request(granularity: str, include: str = "ALL", entry_type: str = "g_variants") -> BeaconRequest:
    return BeaconRequest(entry_type=entry_type, granularity=granularity, include=include, skip=0, limit=10)


VARIANT = {"variantInternalId": "21-100-A-G", "variation": {
    "referenceBases": "A", "alternateBases": "G", "variantType": "SNP",
    "location": {"type": "SequenceLocation", "sequence_id": "refseq:NC_000021.9",
                 "interval": {"type": "SequenceInterval", "start": {"type": "Number", "value": 99},
                              "end": {"type": "Number", "value": 100}}}},
    "caseLevelData": [{"biosampleId": "S1", "individualId": "I1"}]}


def mixed() -> list[DatasetAnswer]:
    """A grant holder's answer: A granted (records), B counted, C public, D nothing found."""
    return [DatasetAnswer("A", "controlled", 2, "record", record_allowed=True, records=[VARIANT, VARIANT],
                          audit_event="e-1"),
            DatasetAnswer("B", "controlled", 3, "count"),
            DatasetAnswer("C", "public", 27, "record", record_allowed=True, records=[VARIANT], audit_event="e-2"),
            DatasetAnswer("D", "controlled", 0, "count")]


def test_a_record_response_has_records_only_where_they_may_be_read():
    body = answers.resultsets_response(request("record"), mixed(), beacon_id="org.example.fi", counting=COUNTING)
    assert beacon_spec.response_errors(body) == []
    sets = {s["id"]: s for s in body["response"]["resultSets"]}
    assert sets["A"]["results"] == [VARIANT, VARIANT] and sets["A"]["resultsCount"] == 2
    assert sets["A"]["info"] == {"returnedGranularity": "record", "accessRights": "controlled", "auditEvent": "e-1"}
    assert sets["B"]["results"] == [] and sets["B"]["resultsCount"] == 5
    assert (sets["B"]["countPrecision"], sets["B"]["countAdjustedTo"]) == ("imprecise", [5])
    assert sets["B"]["info"]["returnedGranularity"] == "count" and "auditEvent" not in sets["B"]["info"]
    assert sets["C"]["resultsCount"] == 27 and sets["C"]["countPrecision"] == "exact"
    assert sets["D"] == {"id": "D", "setType": "dataset", "exists": False, "resultsCount": 0, "countPrecision": "exact",
                         "results": [], "info": {"returnedGranularity": "count", "accessRights": "controlled"}}
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 2 + 5 + 27 + 0,
                                       "countPrecision": "imprecise", "countAdjustedTo": [5]}
    assert body["meta"]["returnedGranularity"] == "record"


def test_a_count_response_has_no_records_and_no_result_set_has_results():
    body = answers.resultsets_response(request("count"), mixed(), beacon_id="org.example.fi", counting=COUNTING)
    assert beacon_spec.response_errors(body) == []
    assert body["meta"]["returnedGranularity"] == "count"
    assert all("results" not in s for s in body["response"]["resultSets"])
    # Where record access was established (the enforcement point asked), the count shown is exact.
    assert {s["id"]: s["resultsCount"] for s in body["response"]["resultSets"]} == {"A": 2, "B": 5, "C": 27, "D": 0}


def test_at_boolean_granularity_no_count_appears_anywhere():
    anonymous = [DatasetAnswer("A", "controlled", 1, "boolean"), DatasetAnswer("B", "controlled", 0, "boolean")]
    body = answers.resultsets_response(request("count"), anonymous, beacon_id="org.example.fi", counting=COUNTING)
    assert beacon_spec.response_errors(body) == []
    assert body["meta"]["returnedGranularity"] == "boolean"
    assert body["responseSummary"] == {"exists": True}
    assert "Count" not in str(body["response"]) and "numTotal" not in str(body)
    assert [s["exists"] for s in body["response"]["resultSets"]] == [True, False]


def test_an_anonymous_count_beside_a_public_dataset_leaves_the_controlled_one_out_of_the_total():
    anonymous = [DatasetAnswer("A", "controlled", 1, "boolean"),
                 DatasetAnswer("P", "public", 12, "count")]
    body = answers.resultsets_response(request("record"), anonymous, beacon_id="org.example.fi", counting=COUNTING)
    assert beacon_spec.response_errors(body) == []
    assert body["meta"]["returnedGranularity"] == "count"
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 12, "countPrecision": "imprecise"}
    assert "resultsCount" not in body["response"]["resultSets"][0]


@pytest.mark.parametrize(("include", "expected"), [("ALL", ["A", "B", "C", "D"]), ("HIT", ["A", "B", "C"]),
                                                   ("MISS", ["D"]), ("NONE", [])])
def test_include_resultset_responses(include, expected):
    body = answers.resultsets_response(request("count", include), mixed(), beacon_id="org.example.fi",
                                       counting=COUNTING)
    assert [s["id"] for s in body["response"]["resultSets"]] == expected
    assert body["responseSummary"]["exists"] is True  # the summary is over every dataset, listed or not
    assert beacon_spec.response_errors(body) == []


def test_the_datasets_collection():
    records = [{"id": "A", "name": "Alpha"}, {"id": "B", "name": "Beta"}, {"id": "C", "name": "Gamma"}]
    body = answers.collections_response(request("record", entry_type="datasets"), records, beacon_id="org.example.fi")
    assert beacon_spec.response_errors(body) == []
    assert body["response"]["collections"] == records and body["responseSummary"]["numTotalResults"] == 3
    for record in records:
        assert beacon_spec.record_errors("datasets", record) == []
    counted = answers.collections_response(request("count", entry_type="datasets"), records, beacon_id="x")
    assert beacon_spec.response_errors(counted) == [] and "response" not in counted
