"""htsget 1.3 on the real stack: tickets for archived BAM, CRAM, VCF and BCF, followed URL by URL through the
data endpoint and read with pysam; Crypt4GH tickets decrypted with the reader's key; access refused and audited;
public data without a token; a withdrawn dataset gone. Every ticket and error body is checked against
``specs/htsget.openapi.yaml``.

Aliases here are this module's own (``htsget-it-...``): the DRS tests own ``htsnexus_test_NA12878``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
from pathlib import Path
from typing import Any

import crypt4gh.keys
import crypt4gh.lib
import httpx
import pytest

from genomebus.gateway import htsget_tickets as tickets
from genomebus.producers.datasets import withdraw_dataset
from tests import htsget_records as records
from tests import htsget_spec as spec
from tests.data import DATA
from tests.integration.storage import (BAM, BCF, CRAM, VCF, StoredDataset, archived_dataset, audit_events,
                                       bearer, granted, http, token)  # noqa: F401 - http is a fixture

pytestmark = pytest.mark.integration

HTSGET = "/htsget/v1"
ALIAS = f"htsget-it-bam-{os.getpid()}"
ALICE_PUB = (DATA / "crypt4gh" / "alice.pub").read_bytes()
ALICE_SEC = crypt4gh.keys.get_private_key(str(DATA / "crypt4gh" / "alice.sec"), lambda: "")
FORMAT_OF = {BAM: "BAM", CRAM: "CRAM", VCF: "VCF", BCF: "BCF"}
ENDPOINT_OF = {BAM: "reads", CRAM: "reads", VCF: "variants", BCF: "variants"}


@pytest.fixture(autouse=True)
def _no_reference_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    records.no_reference_download(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
async def datasets(stack: Any, publisher: Any) -> dict[str, StoredDataset]:
    """A controlled dataset (BAM under an alias, CRAM, VCF, BCF) granted to ``reader``, a public one, one to withdraw."""
    controlled, public, doomed = await asyncio.gather(
        archived_dataset(stack, publisher, [(BAM, ALIAS), (CRAM, None), (VCF, None), (BCF, None)],
                         title="htsget controlled"),
        archived_dataset(stack, publisher, [(VCF, None)], access_rights="public", title="htsget public"),
        archived_dataset(stack, publisher, [(BCF, None)], title="htsget to withdraw"))
    await granted(stack, "reader", controlled)
    return {"controlled": controlled, "public": public, "doomed": doomed}


class Client:
    """An htsget client: asks for a ticket, follows its URLs (data URLs without the API's token), keeps a file."""

    def __init__(self, http: httpx.AsyncClient, directory: Path, headers: dict[str, str] | None = None) -> None:
        self.http, self.directory, self.headers = http, directory, headers or {}
        self.data_audit_events: list[tuple[str, str]] = []  # (X-Audit-Event, Range) of every data URL read

    async def ticket(self, endpoint: str, object_id: str, *, body: Any = None, headers: dict[str, str] | None = None,
                     **params: Any) -> httpx.Response:
        url = f"{HTSGET}/{endpoint}/{object_id}"
        headers = {**self.headers, **(headers or {})}
        if body is None:
            return await self.http.get(url, params=params, headers=headers)
        return await self.http.post(url, json=body, headers=headers)

    async def file(self, endpoint: str, object_id: str, *, c4gh: bool = False, **kwargs: Any) -> Path:
        response = await self.ticket(endpoint, object_id, **kwargs)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == tickets.TICKET_MEDIA_TYPE
        ticket = response.json()
        spec.check_ticket(endpoint, ticket)
        blob = await records.concatenate(ticket, self._fetch)
        if c4gh:
            out = io.BytesIO()
            crypt4gh.lib.decrypt([(0, ALICE_SEC, None)], io.BytesIO(blob), out)
            blob = out.getvalue()
        path = self.directory / f"t{len(list(self.directory.iterdir()))}{records.SUFFIXES[ticket['htsget']['format']]}"
        path.write_bytes(blob)
        return path

    async def _fetch(self, url: str, headers: dict[str, str]) -> bytes:
        assert "/data/objects/" in url and "sig=" in url
        async with httpx.AsyncClient(timeout=60) as plain:  # the data URL carries its own credential, not the API's
            response = await plain.get(url, headers=headers)
        assert response.status_code == (206 if "Range" in headers else 200), response.text
        self.data_audit_events.append((response.headers["x-audit-event"], headers.get("Range", "")))
        return response.content


def refused(response: httpx.Response, status: int, name: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    spec.check_error(response.json(), name)
    return response.json()["htsget"]["message"]


REGIONS = [
    (BAM, "11", 5015000, 5050000), (BAM, "20", None, None), (BAM, "11", 4999900, 5000100), (BAM, "*", None, None),
    (BAM, "20", 6_050_000, None),
    (CRAM, "11", 5015000, 5050000), (CRAM, "20", 0, None), (CRAM, "11", 5_000_000, 5_000_001),
    (VCF, "chrM", 180, 2300), (VCF, "chr22", 152, 153), (VCF, "chrM", None, 400),
    (BCF, "chrM", None, None), (BCF, "chr22", 100, None), (BCF, "chrM", 2000, 3000),
]


async def test_tickets_for_many_regions_give_the_records_pysam_finds_in_the_original(stack, datasets, http,
                                                                                     tmp_path):
    controlled = datasets["controlled"]
    client = Client(http, tmp_path, bearer(stack, "reader"))
    for path, contig, start, end in REGIONS:
        fmt, params = FORMAT_OF[path], {"referenceName": contig, "start": start, "end": end}
        copy = await client.file(ENDPOINT_OF[path], controlled.drs_id(path),
                                 **{k: v for k, v in params.items() if v is not None})
        want = records.expected(fmt, path, contig, start, end)
        assert want, f"{fmt} {contig}:{start}-{end} was chosen to hold records"
        assert records.found(fmt, copy, contig, start, end) == want, (fmt, contig, start, end)
        assert records.header_text(fmt, copy) == records.header_text(fmt, path)


async def test_the_header_the_whole_file_and_empty_answers_are_valid_files(stack, datasets, http, tmp_path):
    controlled = datasets["controlled"]
    client = Client(http, tmp_path, bearer(stack, "reader"))
    for path in (BAM, CRAM, VCF, BCF):
        fmt, endpoint, object_id = FORMAT_OF[path], ENDPOINT_OF[path], controlled.drs_id(path)
        header = await client.file(endpoint, object_id, format=fmt, **{"class": "header"})
        assert records.header_text(fmt, header) == records.header_text(fmt, path)
        assert not records.every_record(fmt, header)
        whole = await client.file(endpoint, object_id)
        assert records.every_record(fmt, whole) == records.every_record(fmt, path)
        contig = "11" if fmt in records.READS else "chrM"
        beyond = await client.file(endpoint, object_id, referenceName=contig, start=3_000_000_000)
        assert records.header_text(fmt, beyond) == records.header_text(fmt, path)
        assert not records.every_record(fmt, beyond)
    alias = await client.file("reads", ALIAS, referenceName="11", start=5015000, end=5016000)
    assert records.found("BAM", alias, "11", 5015000, 5016000) == records.expected("BAM", BAM, "11", 5015000, 5016000)


async def test_post_regions_answer_each_region_once(stack, datasets, http, tmp_path):
    controlled = datasets["controlled"]
    client = Client(http, tmp_path, bearer(stack, "reader"))
    regions = [{"referenceName": "20", "start": 0, "end": 100_000_000}, {"referenceName": "*"},
               {"referenceName": "11", "start": 5015000, "end": 5050000},
               {"referenceName": "11", "start": 5000000, "end": 5020000}]
    for path in (BAM, CRAM):
        copy = await client.file("reads", controlled.drs_id(path), body={"format": FORMAT_OF[path], "regions": regions})
        assert max(records.every_record(FORMAT_OF[path], copy).values()) == 1, "a record sent twice"
        for r in regions:
            want = records.expected(FORMAT_OF[path], path, r["referenceName"], r.get("start"), r.get("end"))
            assert records.found(FORMAT_OF[path], copy, r["referenceName"], r.get("start"), r.get("end")) == want
    copy = await client.file("variants", controlled.drs_id(BCF), body={"regions": [
        {"referenceName": "chr22"}, {"referenceName": "chrM", "start": 100, "end": 500}]})
    for contig, start, end in (("chr22", None, None), ("chrM", 100, 500)):
        assert records.found("BCF", copy, contig, start, end) == records.expected("BCF", BCF, contig, start, end)


async def test_a_crypt4gh_ticket_decrypts_with_the_readers_key_to_the_regions_records(stack, datasets, http, tmp_path):
    controlled = datasets["controlled"]
    client = Client(http, tmp_path, {**bearer(stack, "reader"),
                                     tickets.PUBLIC_KEY_HEADER: base64.b64encode(ALICE_PUB).decode()})
    for path, contig, start, end in [(BAM, "11", 5015000, 5050000), (CRAM, "20", 0, None), (VCF, "chrM", 180, 2300),
                                     (BCF, "chr22", None, None)]:
        params = {k: v for k, v in {"referenceName": contig, "start": start, "end": end}.items() if v is not None}
        copy = await client.file(ENDPOINT_OF[path], controlled.drs_id(path), c4gh=True, encryptionScheme="C4GH",
                                 **params)
        fmt = FORMAT_OF[path]
        assert records.found(fmt, copy, contig, start, end) == records.expected(fmt, path, contig, start, end)
    copy = await client.file("reads", ALIAS, c4gh=True, body={"encryptionScheme": "C4GH", "regions": [
        {"referenceName": "11", "start": 5015000, "end": 5016000}, {"referenceName": "*"}]})
    for contig, start, end in (("11", 5015000, 5016000), ("*", None, None)):
        assert records.found("BAM", copy, contig, start, end) == records.expected("BAM", BAM, contig, start, end)
    no_key = await http.get(f"{HTSGET}/reads/{ALIAS}", params={"encryptionScheme": "C4GH"},
                            headers=bearer(stack, "reader"))
    assert tickets.PUBLIC_KEY_HEADER in refused(no_key, 400, "InvalidInput")


async def test_bad_requests_are_htsget_errors(stack, datasets, http):
    controlled, auth = datasets["controlled"], bearer(stack, "reader")
    bam, vcf = controlled.drs_id(BAM), controlled.drs_id(VCF)
    cases = [
        ("reads", bam, {"referenceName": "11", "start": 200, "end": 100}, 400, "InvalidRange"),
        ("reads", bam, {"referenceName": "chr11"}, 404, "NotFound"),
        ("reads", "GDI-FI-FILE-1", {}, 404, "NotFound"),
        ("reads", vcf, {}, 404, "NotFound"),
        ("variants", bam, {}, 404, "NotFound"),
        ("reads", bam, {"format": "CRAM"}, 400, "UnsupportedFormat"),
        ("variants", vcf, {"format": "BAM"}, 400, "UnsupportedFormat"),
        ("reads", bam, {"class": "body"}, 400, "InvalidInput"),
        ("reads", bam, {"class": "header", "referenceName": "11"}, 400, "InvalidInput"),
        ("reads", bam, {"start": 5}, 400, "InvalidInput"),
        ("reads", bam, {"referenceName": "*", "start": 5}, 400, "InvalidInput"),
        ("reads", bam, {"start": "five", "referenceName": "11"}, 400, "InvalidInput"),
        ("reads", bam, {"fields": "QNAME,READNAME"}, 400, "InvalidInput"),
        ("reads", bam, {"tags": "NM,MD", "notags": "MD"}, 400, "InvalidInput"),
    ]
    for endpoint, object_id, params, status, name in cases:
        refused(await http.get(f"{HTSGET}/{endpoint}/{object_id}", params=params, headers=auth), status, name)
    refused(await http.post(f"{HTSGET}/reads/{bam}", json={"regions": []}, headers=auth), 400, "InvalidInput")
    refused(await http.post(f"{HTSGET}/reads/{bam}", json={"regions": [{"referenceName": "11", "start": 9, "end": 9}]},
                            headers=auth), 400, "InvalidRange")
    fields = await http.get(f"{HTSGET}/reads/{bam}", params={"referenceName": "11", "start": 5015000, "end": 5015100,
                                                               "fields": "QNAME,POS", "tags": "NM", "notags": "OQ"},
                            headers=auth)
    assert fields.status_code == 200  # valid filters: checked, and the records come whole


async def test_access_is_refused_without_a_token_or_a_grant_and_every_decision_is_audited(stack, datasets, http):
    controlled = datasets["controlled"]
    bam = controlled.drs_id(BAM)
    anonymous = await http.get(f"{HTSGET}/reads/{bam}", params={"referenceName": "11", "start": 5, "end": 10})
    refused(anonymous, 401, "InvalidAuthentication")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    stranger = await http.post(f"{HTSGET}/reads/{ALIAS}", json={"class": "header"}, headers=bearer(stack, "stranger"))
    refused(stranger, 403, "PermissionDenied")
    allowed = await http.get(f"{HTSGET}/variants/{controlled.drs_id(VCF)}", params={"referenceName": "chrM"},
                             headers=bearer(stack, "reader"))
    assert allowed.status_code == 200
    events = await audit_events(stack)
    assert {k: events[anonymous.headers["x-audit-event"]][k] for k in ("type", "object_id", "region", "status")} == {
        "type": "data.access_denied", "object_id": bam, "region": "11:5-10", "status": 401}
    assert {k: events[stranger.headers["x-audit-event"]][k] for k in ("type", "user_id", "object_id", "region")} == {
        "type": "data.access_denied", "user_id": "stranger", "object_id": bam, "region": "header"}
    event = events[allowed.headers["x-audit-event"]]
    assert (event["type"], event["user_id"], event["object_id"], event["region"]) == (
        "data.accessed", "reader", controlled.drs_id(VCF), "chrM")
    assert event["grant_id"]


async def test_public_data_needs_no_token_and_each_data_block_is_audited_with_its_bytes(stack, datasets, http,
                                                                                       tmp_path):
    public = datasets["public"]
    client = Client(http, tmp_path)
    response = await client.ticket("variants", public.drs_id(VCF), referenceName="chrM", start=180, end=2300)
    assert response.status_code == 200, response.text
    copy = await client.file("variants", public.drs_id(VCF), referenceName="chrM", start=180, end=2300)
    assert records.found("VCF", copy, "chrM", 180, 2300) == records.expected("VCF", VCF, "chrM", 180, 2300)
    events = await audit_events(stack)
    ticket_event = events[response.headers["x-audit-event"]]
    assert (ticket_event["type"], ticket_event["credential"], ticket_event["object_id"], ticket_event["region"]) == (
        "data.accessed", "public", public.drs_id(VCF), "chrM:180-2300")
    assert client.data_audit_events, "the ticket's records come from the data endpoint"
    for event_id, byte_range in client.data_audit_events:
        assert (events[event_id]["object_id"], events[event_id]["byte_range"]) == (public.drs_id(VCF), byte_range)


async def test_a_withdrawn_datasets_objects_are_not_found(stack, datasets, publisher, http):
    doomed = datasets["doomed"]
    await granted(stack, "mourner", doomed)
    bcf = doomed.drs_id(BCF)
    assert (await http.get(f"{HTSGET}/variants/{bcf}", headers=bearer(stack, "mourner"))).status_code == 200
    outcome = await withdraw_dataset(stack, doomed.dataset_id, reason="consent withdrawn", actor="steward-test",
                                     publisher=publisher)
    assert outcome.accepted, outcome
    refused(await http.get(f"{HTSGET}/variants/{bcf}", headers=bearer(stack, "mourner")), 404, "NotFound")


@pytest.mark.parametrize(("path", "datatype"), [("service-info", None), ("reads/service-info", "reads"),
                                                ("variants/service-info", "variants")])
async def test_service_info_is_htsget_1_3(http, path, datatype):
    response = await http.get(f"{HTSGET}/{path}")
    assert response.status_code == 200
    spec.check("htsgetServiceInfo", response.json())
    assert response.json()["type"]["version"] == "1.3.0" and response.json()["htsget"].get("datatype") == datatype
