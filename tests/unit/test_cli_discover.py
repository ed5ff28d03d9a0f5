"""`genomebus discover` and its SDK against a Beacon played by ``httpx.MockTransport``.

``FakeBeacon`` answers as a genomebus Beacon does: booleans without a token, counts (a small one
shown as the threshold, a larger one rounded up) for a researcher, records for a granted one; the
federated endpoint adds a peer and a status per node. Every request is kept, so what was sent (the
0-based coordinates, the filters, the token) is asserted too. Errors are one plain line each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from genomebus.cli import ExitCode, app
from genomebus.producers.discover import (
    DiscoveryClient,
    InvalidQuery,
    parse_filter,
    parse_variant,
    read_answer,
    request_body,
)
from tests.unit.test_cli import assert_plain_error, running_node  # noqa: F401 - a fixture

RESEARCHER, GRANTED = "researcher-token", "granted-token"
VARIANT_RECORD = {
    "variantInternalId": "21:10000061:A:G",
    "variation": {"referenceBases": "A", "alternateBases": "G", "variantType": "SNP",
                  "location": {"type": "SequenceLocation", "sequence_id": "HGVSid:21",
                               "interval": {"type": "SequenceInterval", "start": {"type": "Number", "value": 10000061},
                                            "end": {"type": "Number", "value": 10000062}}}},
    "frequencyInPopulations": [{"source": "GDI-FI-DATASET-001", "sourceReference": "GDI-FI-DATASET-001",
                                "frequencies": [{"population": "GDI-FI-DATASET-001", "alleleFrequency": 0.1667}]}],
    "caseLevelData": [{"biosampleId": "FI-EPM1-0001-B01", "individualId": "FI-EPM1-0001", "zygosity": {
        "id": "GENO:0000458", "label": "simple heterozygous"}}],
}


def result_set(dataset: str, granularity: str, *, count: int = 0, node: str | None = None,
               precision: str = "exact", adjusted: list[int | str] | None = None, records: list[dict] | None = None
               ) -> dict[str, Any]:
    """A result set as genomebus's Beacon writes one: no count at boolean granularity, 2.x's count members."""
    info: dict[str, Any] = {"returnedGranularity": granularity, "accessRights": "controlled"}
    if node:
        info["node"] = node
    rs: dict[str, Any] = {"id": dataset, "setType": "dataset", "exists": count > 0}
    if granularity != "boolean":
        rs |= {"resultsCount": count, "countPrecision": precision}
        if adjusted:
            rs["countAdjustedTo"] = adjusted
    if records is not None:
        rs["results"] = records
    rs["info"] = info
    return rs


class FakeBeacon:
    """Two datasets at FI: 001 holds the variant in 3 individuals (a small count), 002 in 14; SE's holds it too."""

    def __init__(self, *, status: int = 200, detail: str = "", retry_after: str | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.detail, self.retry_after = status, detail, retry_after

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(self.status, headers=headers, json={
                "meta": {"beaconId": "fi", "apiVersion": "v2.0.0", "returnedSchemas": []},
                "error": {"errorCode": self.status, "errorMessage": self.detail}})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        granularity = {RESEARCHER: "count", GRANTED: "record"}.get(token, "boolean")
        sets = self.sets(granularity, "FI" if request.url.path.startswith("/beacon/v2/federated/") else None)
        body: dict[str, Any] = {
            "meta": {"beaconId": "org.example.genomebus.fi", "apiVersion": "v2.0.0", "returnedSchemas": [],
                     "returnedGranularity": granularity,
                     "receivedRequestSummary": {"apiVersion": "v2.0.0", "requestedSchemas": [], "pagination": {},
                                                "requestedGranularity": granularity}},
            "responseSummary": {"exists": True} | ({"numTotalResults": 25} if granularity != "boolean" else {}),
            "response": {"resultSets": sets},
        }
        if request.url.path.startswith("/beacon/v2/federated/"):
            body["response"]["resultSets"] += [result_set("GDI-SE-DATASET-001", "boolean", count=1, node="SE")]
            body["meta"]["returnedGranularity"] = "boolean"
            body["responseSummary"] = {"exists": True}
            body["info"] = {"federated": True, "deadlineSeconds": 10, "nodes": [
                {"node": "FI", "url": "http://127.0.0.1:9/beacon/v2", "status": "ok", "self": True,
                 "elapsedSeconds": 0.042, "returnedGranularity": granularity, "exists": True},
                {"node": "SE", "url": "http://127.0.0.1:10/beacon/v2", "status": "ok", "elapsedSeconds": 0.2,
                 "returnedGranularity": "boolean", "exists": True, "credentialsForwarded": False},
                {"node": "NO", "url": "http://127.0.0.1:11/beacon/v2", "status": "timeout", "elapsedSeconds": 10.0,
                 "detail": "no answer within the deadline of 10 s", "credentialsForwarded": False}],
                "warnings": [{"code": "peer_configuration", "message": "peer DK is defined twice; http://x is not asked"},
                             {"code": "unknown_term", "message": "HP:9 is not a term of this beacon's data",
                              "filterId": "HP:9", "node": "SE"}]}
        return httpx.Response(200, json=body)

    @staticmethod
    def sets(granularity: str, node: str | None) -> list[dict[str, Any]]:
        if granularity == "boolean":
            return [result_set("GDI-FI-DATASET-001", "boolean", count=3, node=node),
                    result_set("GDI-FI-DATASET-002", "boolean", count=14, node=node)]
        if granularity == "count":
            return [result_set("GDI-FI-DATASET-001", "count", count=5, precision="imprecise", adjusted=[5], node=node),
                    result_set("GDI-FI-DATASET-002", "count", count=20, precision="rounded",
                               adjusted=["rounded up to a multiple of 10"], node=node)]
        return [result_set("GDI-FI-DATASET-001", "record", count=3, records=[VARIANT_RECORD], node=node),
                result_set("GDI-FI-DATASET-002", "count", count=20, precision="rounded",
                           adjusted=["rounded up to a multiple of 10"], records=[], node=node)]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOMEBUS_TOKEN", raising=False)
    return CliRunner()


def serve(monkeypatch: pytest.MonkeyPatch, fake: FakeBeacon) -> FakeBeacon:
    real = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real(transport=httpx.MockTransport(fake.answer), **kw))
    return fake


@pytest.fixture
def beacon(monkeypatch: pytest.MonkeyPatch) -> FakeBeacon:
    return serve(monkeypatch, FakeBeacon())


def discover(runner: CliRunner, node: Path, *args: str, token: str | None = None):
    return runner.invoke(app, ["discover", *args, "--data-dir", str(node), *(["--token", token] if token else [])])


# -- what is sent ---------------------------------------------------------------------------------------


def test_a_variant_is_sent_with_beacons_0_based_start_and_the_answer_is_a_table(runner, running_node, beacon):
    result = discover(runner, running_node, "21:10000062:A>G")

    assert result.exit_code == 0, result.output
    [request] = beacon.requests
    assert request.method == "POST" and str(request.url) == "http://127.0.0.1:9/beacon/v2/g_variants"
    assert "authorization" not in request.headers
    assert beacon.bodies()[0] == {"meta": {"apiVersion": "v2.0.0"}, "query": {
        "requestParameters": {"referenceName": "21", "start": [10000061], "referenceBases": "A",
                              "alternateBases": "G"},
        "requestedGranularity": "record", "includeResultsetResponses": "ALL", "pagination": {"skip": 0, "limit": 10}}}
    lines = result.stdout.splitlines()
    assert lines[0] == "g_variants matching 21:10000062:A>G: found (granularity returned: boolean)"
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in lines if "GDI-FI-DATASET" in line}
    assert rows == {"GDI-FI-DATASET-001": ["yes", "—", "boolean"], "GDI-FI-DATASET-002": ["yes", "—", "boolean"]}
    assert result.stderr == ""


def test_a_researcher_sees_small_counts_as_the_threshold_and_the_rest_rounded(runner, running_node, beacon):
    result = discover(runner, running_node, "21-10000062-A-G", token=RESEARCHER)

    assert result.exit_code == 0, result.output
    assert beacon.requests[0].headers["authorization"] == f"Bearer {RESEARCHER}"
    assert "found, 25 in all (granularity returned: count)" in result.stdout
    assert "1 to 5 (a small count, not shown exactly)" in result.stdout
    assert "20 (rounded up)" in result.stdout


def test_a_granted_researcher_sees_the_records_of_the_granted_dataset(runner, running_node, beacon):
    result = discover(runner, running_node, "21:10000062:A>G", token=GRANTED)

    assert result.exit_code == 0, result.output
    assert "GDI-FI-DATASET-001: 1 record" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "21:10000061:A:G" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "21:10000061:A:G", "21:10,000,062", "A>G", "SNP", "0.1667", "FI-EPM1-0001"]
    assert "GDI-FI-DATASET-002:" not in result.stdout  # counts only there: no records table


def test_federated_asks_the_federated_endpoint_and_shows_each_nodes_status(runner, running_node, beacon):
    result = discover(runner, running_node, "21:10000062", "--federated", token=RESEARCHER)

    assert result.exit_code == 0, result.output
    assert beacon.requests[0].url.path == "/beacon/v2/federated/g_variants"
    assert beacon.bodies()[0]["query"]["requestParameters"] == {"referenceName": "21", "start": [10000061],
                                                                "end": [10000062]}
    out = result.stdout
    nodes_table = out[out.index("nodes"):out.index("datasets")]
    nodes = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in nodes_table.splitlines() if line.count("│") == 6}
    assert nodes["FI (this node)"] == ["ok", "0.04 s", "count", "found"]
    assert nodes["SE"] == ["ok", "0.20 s", "boolean", "found"]
    assert nodes["NO"] == ["timeout", "10.00 s", "", "no answer within the deadline of 10 s"]
    assert any("SE" in line and "GDI-SE-DATASET-001" in line for line in out.splitlines())
    assert "note: peer DK is defined twice; http://x is not asked" in out
    assert "note: SE: HP:9 is not a term of this beacon's data" in out


def test_filters_and_entry_types_are_sent_as_beacon_filters(runner, running_node, beacon):
    result = discover(runner, running_node, "--entry", "individuals", "-f", "NCIT:C16576", "-f", "HP:0001250",
                      "--filter", "alleleFrequency<0.01", "--no-descendants", "--granularity", "count",
                      "--resultsets", "hit", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert beacon.requests[0].url.path == "/beacon/v2/individuals"
    query = beacon.bodies()[0]["query"]
    assert query["filters"] == [{"id": "NCIT:C16576", "includeDescendantTerms": False},
                                {"id": "HP:0001250", "includeDescendantTerms": False},
                                {"id": "alleleFrequency", "operator": "<", "value": "0.01"}]
    assert "requestParameters" not in query
    assert (query["requestedGranularity"], query["includeResultsetResponses"], query["pagination"]) == (
        "count", "HIT", {"skip": 0, "limit": 5})
    assert result.stdout.startswith("individuals matching NCIT:C16576, HP:0001250, alleleFrequency<0.01: found")


def test_json_prints_the_beacons_answer_as_it_came(runner, running_node, beacon):
    result = discover(runner, running_node, "21:10000062:A>G", "--json", token=GRANTED)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["meta"]["returnedGranularity"] == "record"
    assert document["response"]["resultSets"][0]["results"] == [VARIANT_RECORD]


def test_another_beacon_needs_no_local_node(runner, beacon, tmp_path):
    result = runner.invoke(app, ["discover", "21:10000062:A>G", "--beacon", "https://beacon.se.example/beacon/v2/",
                                 "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert str(beacon.requests[0].url) == "https://beacon.se.example/beacon/v2/g_variants"


# -- errors, one line each ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry", "token", "code", "needles"), [
    (400, None, None, ExitCode.USAGE, ("the Beacon cannot read the query: start without referenceName",)),
    (401, None, "stale", ExitCode.REFUSED, ("your token was refused (start without referenceName)",
                                            "`genomebus token issue`", "ask without --token")),
    (404, None, None, ExitCode.NOT_FOUND, ("the Beacon has no such endpoint", "check --beacon")),
    (429, "120", None, ExitCode.REFUSED, ("the query budget is spent", "try again in 120 s", "or sign in")),
    (429, None, RESEARCHER, ExitCode.REFUSED, ("try again later",)),
    (503, None, None, ExitCode.UNAVAILABLE, ("the Beacon cannot answer now", "try again later")),
])
def test_the_beacons_refusals_are_one_line_with_what_to_do(runner, running_node, monkeypatch, status, retry, token,
                                                           code, needles):
    serve(monkeypatch, FakeBeacon(status=status, detail="start without referenceName", retry_after=retry))
    result = discover(runner, running_node, "21:10000062:A>G", token=token)
    assert_plain_error(result, code, *needles)
    if status == 429 and token:
        assert "sign in" not in result.stderr


def test_a_beacon_that_does_not_answer_is_unavailable(runner, running_node, tmp_path):
    result = discover(runner, running_node, "21:10000062:A>G")  # the node's gateway is 127.0.0.1:9: nobody listens
    assert_plain_error(result, ExitCode.UNAVAILABLE, "does not answer")
    elsewhere = runner.invoke(app, ["discover", "21:1", "--beacon", "http://127.0.0.1:9/beacon/v2",
                                    "--data-dir", str(tmp_path / "none")])
    assert_plain_error(elsewhere, ExitCode.UNAVAILABLE, "the Beacon at http://127.0.0.1:9/beacon/v2 does not answer")


@pytest.mark.parametrize(("args", "needle"), [
    (["21:abc"], "is not a variant or a region; write chr:pos:REF>ALT"),
    (["21:0"], "positions count from 1"),
    (["21:200-100"], "the region ends before it starts"),
    (["21:100:A>Q"], "is not a variant or a region"),
    ([], "give a variant or a region"),
    (["--type", "SNP"], "--type and --assembly qualify a variant or a region"),
    (["21:100", "-f", "sex="], "is not a term or a comparison"),
    (["21:100", "-f", "two words"], "is not a term or a comparison"),
])
def test_a_query_that_cannot_be_written_is_refused_before_anything_is_sent(runner, running_node, beacon, args,
                                                                           needle):
    result = discover(runner, running_node, *args)
    assert_plain_error(result, ExitCode.USAGE, needle)
    assert beacon.requests == []


def test_discover_is_listed_in_the_help(runner):
    assert "discover" in runner.invoke(app, ["--help"]).output


# -- the SDK's reading and writing -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "parameters"), [
    ("21:10000062:A>G", {"referenceName": "21", "start": [10000061], "referenceBases": "A", "alternateBases": "G"}),
    ("chr21:10,000,062 a>g", {"referenceName": "chr21", "start": [10000061], "referenceBases": "A",
                              "alternateBases": "G"}),
    ("21:10000062:AT:A", {"referenceName": "21", "start": [10000061], "referenceBases": "AT", "alternateBases": "A"}),
    ("X-155-C-N", {"referenceName": "X", "start": [154], "referenceBases": "C", "alternateBases": "N"}),
    ("21:10000062", {"referenceName": "21", "start": [10000061], "end": [10000062]}),
    ("21:10,000,001-10,500,000", {"referenceName": "21", "start": [10000000], "end": [10500000]}),
    ("NC_000017.11:g.43045703G>A", {"genomicAlleleShortForm": "NC_000017.11:g.43045703G>A"}),
])
def test_variants_are_written_with_vcfs_positions_and_sent_with_beacons(text, parameters):
    assert parse_variant(text) == parameters


@pytest.mark.parametrize(("text", "expected"), [
    ("HP:0001250", {"id": "HP:0001250", "includeDescendantTerms": True}),
    ("sex=female", {"id": "sex", "operator": "=", "value": "female"}),
    ("alleleFrequency >= 0.05", {"id": "alleleFrequency", "operator": ">=", "value": "0.05"}),
    ("variantType!=SNP", {"id": "variantType", "operator": "!", "value": "SNP"}),
    ("id=FI-EPM1-*", {"id": "id", "operator": "=", "value": "FI-EPM1-*"}),
])
def test_filters_are_terms_or_comparisons(text, expected):
    assert parse_filter(text) == expected


def test_bad_granularity_or_result_sets_are_refused():
    with pytest.raises(InvalidQuery, match="granularity 'all'"):
        request_body(granularity="all")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="result sets 'SOME'"):
        request_body(include="SOME")


def test_an_answer_without_counts_at_boolean_granularity_has_none():
    answer = read_answer({"meta": {"returnedGranularity": "boolean"}, "responseSummary": {"exists": True,
                                                                                          "numTotalResults": 3},
                          "response": {"resultSets": [result_set("D1", "boolean", count=3)]}})
    assert answer.count is None and answer.result_sets[0].count is None and answer.exists
    assert not answer.federated


async def test_the_client_asks_with_the_token_and_reads_the_answer():
    fake = FakeBeacon()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.answer)) as http, DiscoveryClient(
            token=GRANTED, beacon_url="http://fi.test/beacon/v2", http=http) as client:
        answer = await client.query(variant="21:10000062:A>G", federated=True)
    assert fake.requests[0].url == "http://fi.test/beacon/v2/federated/g_variants"
    assert [(n.node, n.status, n.own) for n in answer.nodes] == [("FI", "ok", True), ("SE", "ok", False),
                                                                  ("NO", "timeout", False)]
    assert [(rs.node, rs.id, rs.granularity, rs.count) for rs in answer.result_sets] == [
        ("FI", "GDI-FI-DATASET-001", "record", 3), ("FI", "GDI-FI-DATASET-002", "count", 20),
        ("SE", "GDI-SE-DATASET-001", "boolean", None)]
    assert answer.result_sets[0].records == [VARIANT_RECORD]
