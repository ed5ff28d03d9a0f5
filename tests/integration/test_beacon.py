"""The Beacon on the real stack: what an anonymous caller, a registered researcher and a grant holder each
get from the indexed datasets; small counts never exact; records through the enforcement point and audited
on the audit topic; the query budget's 429; and the membership-inference attack of docs/reidentification.md
run against it.

The datasets are the discovery fixture's (tests/integration/discovery.py): the controlled one (chr21 genomes
HG02102, NA20787, NA18537 and more) and the public one (the VCF specification's example and a chr1 pair).
The queries go to a gateway of this module's own (the stack's settings, with small query budgets), so the
budget counters are this module's alone; anonymous attackers come from their own loopback addresses.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pysam
import pytest
import uvicorn

from genomebus.gateway.app import create_app
from genomebus.infra.settings import Settings
from tests import beacon_spec
from tests.integration.discovery import (HG02102, IndexedDataset, discovery_dataset,  # noqa: F401 - fixtures
                                         public_discovery_dataset)
from tests.integration.storage import audit_events, granted, token

pytestmark = pytest.mark.integration

BEACON = "/beacon/v2"
ANONYMOUS_BUDGET, USER_BUDGET = 30, 40
THRESHOLD, ROUNDING = 5, 10
ONE_CARRIER = "21-9411410-C-T"      # HG02102 only
TWO_CARRIERS = "21-9411602-T-C"     # HG02102, NA20787
THREE_CARRIERS = "21-10003018-A-G"  # HG02102, NA18537, NA20787
SPEC_ALLELE = {"referenceName": "20", "start": [14369], "referenceBases": "G", "alternateBases": "A"}
"""20:14370 G>A of the VCF specification's example: in both datasets."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def beacon_url(stack: Settings) -> Iterator[str]:
    """A gateway of this module's own on a free port, with small query budgets (its counters are its own)."""
    settings = stack.model_copy(update={"beacon_budget_anonymous": ANONYMOUS_BUDGET,
                                        "beacon_budget_user": USER_BUDGET, "beacon_budget_ip": 1000,
                                        "beacon_count_threshold": THRESHOLD, "beacon_count_rounding": ROUNDING})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="beacon-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}{BEACON}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def beacon(beacon_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=beacon_url, timeout=60) as client:
        yield client


def from_address(beacon_url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections come from ``address`` (any 127.x.y.z is this machine's loopback)."""
    return httpx.AsyncClient(base_url=beacon_url, timeout=60,
                             transport=httpx.AsyncHTTPTransport(local_address=address))


_grants: dict[str, Any] = {}


@pytest.fixture
async def alice(stack: Settings, discovery_dataset: IndexedDataset) -> dict[str, str]:  # noqa: F811
    """Headers of alice, who holds a grant for the controlled dataset (approved once per session)."""
    if discovery_dataset.dataset_id not in _grants:
        _grants[discovery_dataset.dataset_id] = await granted(stack, "alice-beacon", discovery_dataset)
    return {"Authorization": f"Bearer {token(stack, 'alice-beacon', 'researcher')}"}


def researcher(stack: Settings, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(stack, user, 'researcher')}"}


def body(**query: Any) -> dict[str, Any]:
    return {"meta": {"apiVersion": "v2.0.0"}, "query": query}


def answer(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found = response.json()
    assert beacon_spec.response_errors(found) == []
    return found


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    found = response.json()
    assert beacon_spec.errors(beacon_spec.RESPONSES["error"], found) == []
    assert found["error"]["errorCode"] == status
    return found


def result_sets(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in found["response"]["resultSets"]}


# -- the framework ---------------------------------------------------------------------------------------

async def test_every_framework_endpoint_on_the_node(beacon, discovery_dataset, public_discovery_dataset):  # noqa: F811
    for path, kind in (("/", "info"), ("/info", "info"), ("/service-info", "service-info"),
                       ("/configuration", "configuration"), ("/map", "map"), ("/entry_types", "entry_types"),
                       ("/filtering_terms", "filtering_terms"), ("/individuals/filtering_terms", "filtering_terms"),
                       (f"/datasets/{discovery_dataset.dataset_id}/filtering_terms", "filtering_terms")):
        response = await beacon.get(path)
        assert response.status_code == 200, (path, response.text)
        assert beacon_spec.errors(beacon_spec.RESPONSES[kind], response.json()) == [], path
    terms = {t["id"] for t in (await beacon.get("/filtering_terms")).json()["response"]["filteringTerms"]}
    assert {"HP:0001250", "HP:0002069", "NCIT:C16576", "keyword:discovery-test", "alleleFrequency"} <= terms
    collection = answer(await beacon.get("/datasets", params={"datasetIds": [
        f"{discovery_dataset.dataset_id},{public_discovery_dataset.dataset_id}"]}))
    assert {d["id"] for d in collection["response"]["collections"]} == {discovery_dataset.dataset_id,
                                                                       public_discovery_dataset.dataset_id}


# -- granularity by caller ---------------------------------------------------------------------------------

async def test_what_each_caller_gets(stack, beacon, alice, discovery_dataset, public_discovery_dataset):  # noqa: F811
    controlled, public = discovery_dataset.dataset_id, public_discovery_dataset.dataset_id
    scope = {"datasets": {"datasetIds": [controlled, public]}}
    # 20:14370 G>A: carried in the controlled dataset by NA00002 (a biosample of P-NA00002) alone.
    asked = body(requestParameters={**scope, "g_variant": SPEC_ALLELE}, requestedGranularity="record")
    anonymous = answer(await beacon.post("/g_variants/20-14370-G-A/individuals", json=asked))
    bob = answer(await beacon.post("/g_variants/20-14370-G-A/individuals", json=asked,
                                   headers=researcher(stack, "bob-beacon")))
    holder = answer(await beacon.post("/g_variants/20-14370-G-A/individuals", json=asked, headers=alice))

    # Anonymous: the controlled dataset by a boolean, the public one counted exactly (and no records beside a
    # boolean-only dataset: a Beacon 2.0 record response needs a count in every result set).
    assert anonymous["meta"]["returnedGranularity"] == "count"
    assert result_sets(anonymous)[controlled] == {"id": controlled, "setType": "dataset", "exists": True,
                                                  "info": {"returnedGranularity": "boolean",
                                                           "accessRights": "controlled"}}
    assert (result_sets(anonymous)[public]["resultsCount"], result_sets(anonymous)[public]["countPrecision"]) == \
        (1, "exact")
    # A researcher without a grant: a count, never the exact small one; the public dataset's records.
    assert bob["meta"]["returnedGranularity"] == "record"
    bob_sets = result_sets(bob)
    assert (bob_sets[controlled]["resultsCount"], bob_sets[controlled]["countPrecision"],
            bob_sets[controlled]["results"]) == (THRESHOLD, "imprecise", [])
    assert [r["id"] for r in bob_sets[public]["results"]] == ["P-NA00002"]
    # The grant holder: the controlled dataset's records, counted exactly, audited.
    held = result_sets(holder)[controlled]
    assert (held["resultsCount"], held["countPrecision"], [r["id"] for r in held["results"]]) == \
        (1, "exact", ["P-NA00002"])
    for item in held["results"]:
        assert beacon_spec.record_errors("individuals", item) == []
    events = await audit_events(stack)
    audit = events[held["info"]["auditEvent"]]
    assert (audit["type"], audit["user_id"], audit["dataset_id"], audit["grant_id"] is not None) == \
        ("data.accessed", "alice-beacon", controlled, True)
    assert audit["resource"] == f"POST {BEACON}/g_variants/20-14370-G-A/individuals"
    public_audit = events[result_sets(holder)[public]["info"]["auditEvent"]]
    assert (public_audit["type"], public_audit["reason"]) == ("data.accessed", "public_dataset")
    # Every decision about the controlled dataset names its caller: the anonymous one was never audited
    # (it never could read records), bob's refusal is.
    decisions = [e for e in events.values() if e["dataset_id"] == controlled
                 and e["resource"] == f"POST {BEACON}/g_variants/20-14370-G-A/individuals"]
    assert {(e["type"], e["user_id"]) for e in decisions} == {("data.access_denied", "bob-beacon"),
                                                             ("data.accessed", "alice-beacon")}


async def test_variant_records_and_counts_against_the_files(stack, beacon, alice, discovery_dataset):  # noqa: F811
    controlled = discovery_dataset.dataset_id
    region = {"referenceName": "21", "start": [9411000], "end": [9413000]}
    expected = sorted({f"21-{r.pos}-{r.ref}-{alt}" for path in discovery_dataset.variant_paths
                       for r in overlapping(path, "21", 9411000, 9413000) for alt in r.alts or ()
                       if alt not in ("*", "<NON_REF>")})
    assert THRESHOLD < len(expected) <= 100
    asked = body(requestParameters={"g_variant": region, "datasetIds": [controlled]}, requestedGranularity="record",
                 pagination={"limit": 100})
    bob = result_sets(answer(await beacon.post("/g_variants", json=asked,
                                               headers=researcher(stack, "bob-beacon"))))[controlled]
    holder = result_sets(answer(await beacon.post("/g_variants", json=asked, headers=alice)))[controlled]
    assert (holder["resultsCount"], holder["countPrecision"]) == (len(expected), "exact")
    assert sorted(r["variantInternalId"] for r in holder["results"]) == expected
    assert any(r.get("caseLevelData") for r in holder["results"])
    assert (bob["resultsCount"], bob["countPrecision"]) == (-(-len(expected) // ROUNDING) * ROUNDING, "rounded")
    assert "results" not in bob and "caseLevelData" not in str(bob)  # a count response: no records at all


@pytest.mark.parametrize(("variant", "carriers"), [(ONE_CARRIER, 1), (TWO_CARRIERS, 2), (THREE_CARRIERS, 3)])
async def test_small_counts_are_never_exact_below_record_access(stack, beacon, alice, discovery_dataset,  # noqa: F811
                                                                variant, carriers):
    controlled = discovery_dataset.dataset_id
    scoped = {"datasets": {"datasetIds": [controlled]}}
    for granularity in ("count", "record"):
        asked = body(requestParameters=scoped, requestedGranularity=granularity)
        bob = result_sets(answer(await beacon.post(f"/g_variants/{variant}/individuals", json=asked,
                                                   headers=researcher(stack, "bob-beacon"))))[controlled]
        assert (bob["resultsCount"], bob["countPrecision"], bob["countAdjustedTo"]) == \
            (THRESHOLD, "imprecise", [THRESHOLD])
    held = result_sets(answer(await beacon.post(f"/g_variants/{variant}/individuals", headers=alice, json=body(
        requestParameters=scoped, requestedGranularity="record"))))[controlled]
    assert held["resultsCount"] == len(held["results"]) == carriers


# -- one person ----------------------------------------------------------------------------------------

async def test_a_query_about_one_individual_needs_record_access(stack, beacon, alice, discovery_dataset,  # noqa: F811
                                                                 public_discovery_dataset):  # noqa: F811
    controlled, public = discovery_dataset.dataset_id, public_discovery_dataset.dataset_id
    asked = {"referenceName": "21", "start": "9411409", "referenceBases": "C", "alternateBases": "T",
             "requestedGranularity": "boolean", "includeResultsetResponses": "ALL",
             "datasetIds": f"{controlled},{public}"}
    # HG02102 carries 21:9411410 C>T in the controlled dataset; the public one describes an HG02102 too (the
    # fixture's metadata), without chr21 data. Without record access the controlled dataset is not asked at all.
    for headers in ({}, researcher(stack, "bob-beacon")):
        found = answer(await beacon.get("/individuals/HG02102/g_variants", params=asked, headers=headers))
        assert set(result_sets(found)) == {public} and result_sets(found)[public]["exists"] is False
        assert [w["id"] for w in found["info"]["withheldDatasets"]] == [controlled]
        assert found["responseSummary"] == {"exists": False}
    holder = answer(await beacon.get("/individuals/HG02102/g_variants", params=asked, headers=alice))
    assert result_sets(holder)[controlled]["exists"] is True and "withheldDatasets" not in holder.get("info", {})


# -- refusals -------------------------------------------------------------------------------------------

async def test_refusals_are_beacon_errors(stack, beacon, discovery_dataset):  # noqa: F811
    bad_token = await beacon.get("/g_variants", headers={"Authorization": "Bearer not-a-token"})
    assert error(bad_token, 401)["type"].endswith("/invalid-token")
    assert bad_token.headers["www-authenticate"].startswith("Bearer")
    no_reference = error(await beacon.get("/g_variants", params={"start": "100", "alternateBases": "A"}), 400)
    assert "referenceName" in no_reference["error"]["errorMessage"]
    error(await beacon.get("/g_variants/21-1-A-G"), 404)
    error(await beacon.get(f"/datasets/{discovery_dataset.dataset_id}X"), 404)


def overlapping(path: Any, contig: str, start: int, end: int) -> list[Any]:
    """The records of ``path`` overlapping ``[start, end)`` of ``contig`` (written ``21`` or ``chr21``)."""
    with pysam.VariantFile(str(path)) as vcf:
        for name in (contig, f"chr{contig}"):
            if name in vcf.header.contigs:
                return [r for r in vcf.fetch(name, start, end) if r.stop > start]
    return []


# -- the membership-inference attack (docs/reidentification.md) ------------------------------------------

def target_alleles(n: int) -> list[dict[str, Any]]:
    """The attacker knows the target's genome: HG02102's first ``n`` non-reference alleles on chr21."""
    found = []
    with pysam.VariantFile(str(HG02102)) as vcf:
        for record in vcf:
            gt = next(iter(record.samples.values()))["GT"]
            for number in sorted({a for a in gt if a}):
                found.append({"referenceName": "21", "start": [record.start], "referenceBases": record.ref,
                              "alternateBases": record.alts[number - 1]})
            if len(found) >= n:
                return found[:n]
    return found


async def test_the_attack_learns_no_small_count_no_carrier_and_is_stopped_by_the_budget(
        stack, beacon_url, discovery_dataset):  # noqa: F811
    controlled = discovery_dataset.dataset_id
    alleles = target_alleles(ANONYMOUS_BUDGET + USER_BUDGET + 2)
    anonymous_answers, researcher_answers = [], []
    refused: dict[str, httpx.Response] = {}
    async with from_address(beacon_url, "127.0.0.77") as anonymous:
        for allele in alleles:
            response = await anonymous.post("/g_variants", json=body(requestParameters=allele,
                                                                      requestedGranularity="record"))
            if response.status_code == 429:
                refused["anonymous"] = response
                break
            anonymous_answers.append(answer(response))
    async with from_address(beacon_url, "127.0.0.78") as eve:
        for allele in alleles:
            variant = f"21-{allele['start'][0] + 1}-{allele['referenceBases']}-{allele['alternateBases']}"
            response = await eve.post(f"/g_variants/{variant}/individuals", headers=researcher(stack, "eve-beacon"),
                                      json=body(requestedGranularity="record"))
            if response.status_code == 429:
                refused["researcher"] = response
                break
            researcher_answers.append(answer(response))
    # The budget ends each series: the anonymous one after its budget, the researcher's after hers.
    assert len(anonymous_answers) == ANONYMOUS_BUDGET and len(researcher_answers) == USER_BUDGET
    for who, response in refused.items():
        found = error(response, 429)
        assert 1 <= int(response.headers["retry-after"]) <= 3600, who
    assert set(refused) == {"anonymous", "researcher"}
    # Anonymous: the controlled dataset answers by a boolean only (it does say yes: see the doc).
    for found in anonymous_answers:
        mine = result_sets(found)[controlled]
        assert set(mine) == {"id", "setType", "exists", "info"} and mine["exists"] is True
    # The researcher: never an exact count of carriers below the threshold; never a carrier's id.
    shown = [result_sets(found)[controlled] for found in researcher_answers]
    assert {(s["resultsCount"], s["countPrecision"]) for s in shown} == {(THRESHOLD, "imprecise")}
    for found in anonymous_answers + researcher_answers:
        text = str(found)
        assert "HG02102" not in text and "caseLevelData" not in text and "NA20787" not in text
