"""The htsget router over HTTP, without a stack: real files encrypted as the archive stores them, the planner,
signed data URLs resolved here as the data endpoint would serve them, a recording stand-in for the enforcement point.

Each ticket is followed the way a client does (data: URIs decoded, data URLs read with their Range
header, Crypt4GH tickets decrypted with the reader's secret key), opened with pysam and compared
with the original; every ticket and error body is checked against ``specs/htsget.openapi.yaml``.
"""

from __future__ import annotations

import base64
import asyncio
import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import crypt4gh.lib
import httpx
import pytest
from crypt4gh import sodium
from fastapi import FastAPI, Request

from genomebus.gateway import htsget_tickets as tickets
from genomebus.gateway import problems
from genomebus.gateway.enforcement import Allowed, Read, challenge
from genomebus.gateway.problems import Problem
from genomebus.gateway.routers import htsget
from genomebus.infra import data_urls
from genomebus.infra.archive_store import ArchivedObject, BytesSource
from genomebus.infra.readmodels import files
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys, ensure_visa_keys
from tests import htsget_records as records
from tests import htsget_spec as spec
from tests.data import DATA

ARCHIVE_SECRET = bytes(range(32))
READER_SECRET = bytes(range(7, 39))
READER_PUBLIC = sodium.derive_pk(READER_SECRET)
READER_KEY_HEADER = {tickets.PUBLIC_KEY_HEADER: base64.b64encode(READER_PUBLIC).decode()}
DATASET, PUBLIC_DATASET = "GDI-FI-DATASET-1", "GDI-FI-DATASET-2"

FILES = {  # accession: (format, data file, index file, alias)
    "GDI-FI-FILE-1": ("BAM", "reads/htsnexus_test_NA12878.bam", "reads/htsnexus_test_NA12878.bam.bai", "na12878-bam"),
    "GDI-FI-FILE-2": ("CRAM", "reads/htsnexus_test_NA12878.cram", "reads/htsnexus_test_NA12878.cram.crai", None),
    "GDI-FI-FILE-3": ("VCF", "variants/sample1-bcbio-cancer.vcf.gz", "variants/sample1-bcbio-cancer.vcf.gz.tbi",
                      "bcbio-vcf"),
    "GDI-FI-FILE-4": ("BCF", "variants/sample1-bcbio-cancer.bcf", "variants/sample1-bcbio-cancer.bcf.csi", None),
    "GDI-FI-FILE-5": ("VCF", "variants/HG02102.vcf.gz", "variants/HG02102.vcf.gz.tbi", None),
    "GDI-FI-FILE-6": ("VCF", "variants/spec-v4.3.vcf.gz", None, None),  # no index: whole file and header only
}
BAM, CRAM, VCF, BCF, BIG_VCF, UNINDEXED = FILES


def _encrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.encrypt([(0, os.urandom(32), sodium.derive_pk(ARCHIVE_SECRET))], io.BytesIO(data), out)
    return out.getvalue()


STORED = {accession: _encrypt((DATA / path).read_bytes()) for accession, (_, path, _, _) in FILES.items()}
ROWS = {accession: {"drs_id": accession, "alias": alias, "dataset_id": PUBLIC_DATASET if accession == BIG_VCF else DATASET,
                    "format": fmt, "filename": Path(path).name, "archive_bucket": "archive", "archive_key": accession,
                    "encrypted_size": len(STORED[accession]), "index_key": index, "sha256": "0" * 64}
        for accession, (fmt, path, index, alias) in FILES.items()}


class FakeArchive:
    """The archive: objects encrypted for the archive key; indexes served decrypted, as ``Archive.index`` does."""

    async def open(self, bucket: str, key: str, size: int | None = None) -> ArchivedObject:
        assert bucket == "archive" and size == len(STORED[key])
        return await ArchivedObject.open(BytesSource(STORED[key]), ARCHIVE_SECRET)

    async def index(self, bucket: str, key: str) -> bytes:
        return (DATA / key).read_bytes()


BODY_OFFSETS = {accession: asyncio.run(FakeArchive().open("archive", accession, len(stored))).body_offset
                for accession, stored in STORED.items()}


class FakePool:
    @contextlib.asynccontextmanager
    async def acquire(self):
        yield None


@dataclass
class RecordingEnforcer:
    """Allows and records every read, unless the test says to refuse (as the enforcement point would, with its status)."""

    reads: list[tuple[str, Read]] = field(default_factory=list)
    refuse: int | None = None

    async def authorize(self, request: Request, dataset_id: str, *, passports: Any = None,
                        read: Read = Read()) -> Allowed:
        self.reads.append((dataset_id, read))
        if self.refuse == 401:
            raise Problem(401, "credentials-required", "this data needs a bearer token", headers=challenge())
        if self.refuse == 403:
            raise Problem(403, "no-grant", f"you hold no active grant for {dataset_id}")
        if self.refuse == 404:
            raise Problem(404, "dataset-withdrawn", f"no released dataset {dataset_id} on this node")
        if dataset_id == PUBLIC_DATASET:
            return Allowed(dataset_id, None, None, "public", "00000000-0000-0000-0000-00000000000a")
        return Allowed(dataset_id, "alice", "grant-1", "bearer", "00000000-0000-0000-0000-00000000000b",
                       "http://127.0.0.1:8080")


@pytest.fixture
def env(tmp_path, monkeypatch):
    records.no_reference_download(monkeypatch, tmp_path)
    settings = Settings(data_dir=tmp_path, gateway_port=8080, node_id="FI")
    ensure_visa_keys(settings.visa_keys_path)

    async def drs_object(conn: Any, object_id: str) -> dict[str, Any] | None:
        return next((dict(r) for r in ROWS.values() if object_id in (r["drs_id"], r["alias"])), None)

    monkeypatch.setattr(files, "drs_object", drs_object)
    app = FastAPI()
    problems.install(app)
    app.include_router(htsget.router)
    app.state.settings, app.state.pool, app.state.archive = settings, FakePool(), FakeArchive()
    app.state.enforcer, app.state.visa_keys = RecordingEnforcer(), VisaKeys.load(settings.visa_keys_path)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return Env(httpx.AsyncClient(transport=transport, base_url="http://gateway"), app, settings, tmp_path)


@dataclass
class Env:
    http: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    directory: Path

    @property
    def enforcer(self) -> RecordingEnforcer:
        return self.app.state.enforcer

    async def ticket(self, endpoint: str, object_id: str, *, body: Any = None, headers: dict[str, str] | None = None,
               **params: Any) -> dict[str, Any]:
        response = await self.request(endpoint, object_id, body=body, headers=headers, **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == tickets.TICKET_MEDIA_TYPE
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-audit-event"]
        ticket = response.json()
        spec.check_ticket(endpoint, ticket)
        return ticket

    async def request(self, endpoint: str, object_id: str, *, body: Any = None, headers: dict[str, str] | None = None,
                **params: Any):
        url = f"/htsget/v1/{endpoint}/{object_id}"
        if body is None:
            return await self.http.get(url, params=params, headers=headers)
        return await self.http.post(url, content=json.dumps(body), headers={"content-type": "application/json",
                                                                     **(headers or {})})

    async def refused(self, status: int, name: str, endpoint: str, object_id: str, **kwargs: Any) -> str:
        response = await self.request(endpoint, object_id, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        spec.check_error(response.json(), name)
        return response.json()["htsget"]["message"]

    async def served(self, url: str, headers: dict[str, str]) -> bytes:
        """What the data endpoint serves for a data URL of a ticket, with the URL's Range header."""
        assert set(headers) == {"Range"}
        ticket = data_urls.verify(self.app.state.visa_keys, self.settings, parse_qs(urlsplit(url).query)["sig"][0])
        assert urlsplit(url).path == f"/data/objects/{ticket.object_id}"
        first, last = (int(n) for n in headers["Range"].removeprefix("bytes=").split("-"))
        stored = STORED[ticket.object_id]
        if ticket.mode == "plain":
            return (DATA / FILES[ticket.object_id][1]).read_bytes()[first:last + 1]
        assert ticket.mode == "c4gh-body" and ticket.recipient == READER_KEY_HEADER[tickets.PUBLIC_KEY_HEADER]
        body_offset = BODY_OFFSETS[ticket.object_id]
        return stored[body_offset + first:body_offset + last + 1]

    async def follow(self, ticket: dict[str, Any], name: str, *, c4gh: bool = False) -> Path:
        blob = await records.concatenate(ticket, self.served)
        if c4gh:
            out = io.BytesIO()
            crypt4gh.lib.decrypt([(0, READER_SECRET, None)], io.BytesIO(blob), out)
            blob = out.getvalue()
        path = self.directory / f"{name}-{len(list(self.directory.iterdir()))}{records.SUFFIXES[ticket['htsget']['format']]}"
        path.write_bytes(blob)
        return path


def original(accession: str) -> Path:
    return DATA / FILES[accession][1]


# -- tickets that answer ------------------------------------------------------------------------------------------

REGIONS = [
    ("reads", BAM, "11", 5015000, 5050000),
    ("reads", BAM, "20", None, None),
    ("reads", BAM, "11", 4999900, 5000100),
    ("reads", BAM, "*", None, None),
    ("reads", CRAM, "11", 5015000, 5050000),
    ("reads", CRAM, "20", 0, None),
    ("variants", VCF, "chrM", 180, 2300),
    ("variants", VCF, "chr22", 152, 153),
    ("variants", BCF, "chrM", None, None),
    ("variants", BCF, "chr22", 100, None),
    ("variants", BIG_VCF, "21", 20_000_000, 20_100_000),
]


@pytest.mark.parametrize(("endpoint", "accession", "contig", "start", "end"), REGIONS,
                         ids=[f"{FILES[a][0]}-{c}:{s}-{e}" for _, a, c, s, e in REGIONS])
@pytest.mark.parametrize("c4gh", [False, True], ids=["plain", "c4gh"])
async def test_a_ticket_for_a_region_gives_the_records_pysam_finds_in_the_original(env, endpoint, accession, contig, start,
                                                                             end, c4gh):
    params = {"referenceName": contig, **({"start": start} if start is not None else {}),
              **({"end": end} if end is not None else {})}
    if c4gh:
        params["encryptionScheme"] = "C4GH"
    ticket = await env.ticket(endpoint, accession, headers=READER_KEY_HEADER if c4gh else None, **params)
    fmt = FILES[accession][0]
    assert ticket["htsget"]["format"] == fmt
    path = await env.follow(ticket, "region", c4gh=c4gh)
    want = records.expected(fmt, original(accession), contig, start, end)
    assert want, "the region was chosen to hold records"
    assert records.found(fmt, path, contig, start, end) == want
    assert records.header_text(fmt, path) == records.header_text(fmt, original(accession))
    region = contig if start is None and end is None else f"{contig}:{start or 0}-{'' if end is None else end}"
    assert env.enforcer.reads == [(ROWS[accession]["dataset_id"], Read(object_id=accession, region=region))]


async def test_a_plain_ticket_inlines_the_header_and_ranges_the_records_each_url_with_its_class(env):
    ticket = await env.ticket("reads", BAM, referenceName="11", start=5015000, end=5050000)
    urls = ticket["htsget"]["urls"]
    assert urls[0]["url"].startswith("data:application/vnd.ga4gh.bam;base64,") and urls[0]["class"] == "header"
    ranged = [u for u in urls if not u["url"].startswith("data:")]
    assert ranged and all(u["class"] == "body" and set(u["headers"]) == {"Range"} for u in ranged)
    data_ticket = data_urls.verify(env.app.state.visa_keys, env.settings,
                                   parse_qs(urlsplit(ranged[0]["url"]).query)["sig"][0])
    assert (data_ticket.mode, data_ticket.user_id, data_ticket.grant_id, data_ticket.credential,
            data_ticket.dataset_id, data_ticket.issuer) == ("plain", "alice", "grant-1", "bearer", DATASET,
                                                            env.settings.gateway_url)


async def test_a_header_larger_than_the_inline_limit_is_a_ranged_url_of_class_header(env):
    env.app.state.settings = env.settings.model_copy(update={"htsget_inline_max_bytes": 0})
    ticket = await env.ticket("reads", BAM, **{"class": "header"})
    assert all(u["class"] == "header" for u in ticket["htsget"]["urls"])
    assert not ticket["htsget"]["urls"][0]["url"].startswith("data:")
    path = await env.follow(ticket, "header")
    assert records.header_text("BAM", path) == records.header_text("BAM", original(BAM))
    assert not records.every_record("BAM", path)


@pytest.mark.parametrize("accession", [BAM, CRAM, VCF, BCF, UNINDEXED])
@pytest.mark.parametrize("c4gh", [False, True], ids=["plain", "c4gh"])
async def test_the_header_and_the_whole_file_need_no_index_and_are_the_original(env, accession, c4gh):
    endpoint = "reads" if FILES[accession][0] in records.READS else "variants"
    extra = {"encryptionScheme": "C4GH"} if c4gh else {}
    headers = READER_KEY_HEADER if c4gh else None
    fmt = FILES[accession][0]
    header = await env.follow(await env.ticket(endpoint, accession, headers=headers, **{"class": "header"}, **extra), "h", c4gh=c4gh)
    assert records.header_text(fmt, header) == records.header_text(fmt, original(accession))
    whole = await env.follow(await env.ticket(endpoint, accession, headers=headers, **extra), "whole", c4gh=c4gh)
    assert records.every_record(fmt, whole) == records.every_record(fmt, original(accession))
    assert [read.region for _, read in env.enforcer.reads] == ["header", "all"]


async def test_the_format_when_asked_is_the_objects_own_and_an_alias_names_the_object(env):
    assert (await env.ticket("reads", "na12878-bam", format="BAM", **{"class": "header"}))["htsget"]["format"] == "BAM"
    assert (await env.ticket("variants", BCF, format="bcf", **{"class": "header"}))["htsget"]["format"] == "BCF"
    assert env.enforcer.reads[0][1].object_id == BAM  # the audit names the accession, not the alias


async def test_post_regions_give_each_regions_records_once_in_file_order(env):
    regions = [{"referenceName": "20", "start": 0, "end": 100_000_000}, {"referenceName": "11", "start": 5015000,
                                                                         "end": 5050000},
               {"referenceName": "11", "start": 5000000, "end": 5020000}]
    for c4gh in (False, True):
        body = {"format": "BAM", "regions": regions, **({"encryptionScheme": "C4GH"} if c4gh else {})}
        path = await env.follow(await env.ticket("reads", BAM, body=body, headers=READER_KEY_HEADER if c4gh else None), "post",
                          c4gh=c4gh)
        got = records.every_record("BAM", path)
        assert max(got.values()) == 1, "a record sent twice"
        for r in regions:
            want = records.expected("BAM", original(BAM), r["referenceName"], r["start"], r["end"])
            assert records.found("BAM", path, r["referenceName"], r["start"], r["end"]) == want
    assert env.enforcer.reads[0][1].region == "20:0-100000000,11:5015000-5050000,11:5000000-5020000"


async def test_a_post_without_a_body_is_the_whole_file(env):
    response = await env.http.post(f"/htsget/v1/variants/{VCF}")
    assert response.status_code == 200, response.text
    path = await env.follow(response.json(), "post-empty")
    assert records.every_record("VCF", path) == records.every_record("VCF", original(VCF))


async def test_a_crypt4gh_ticket_is_a_header_for_the_reader_then_the_stored_segments_without_classes(env):
    ticket = await env.ticket("reads", BAM, headers=READER_KEY_HEADER, referenceName="11", start=5015000, end=5016000,
                              encryptionScheme="C4GH")
    urls = ticket["htsget"]["urls"]
    assert urls[0]["url"].startswith("data:application/octet-stream;base64,")
    assert all("class" not in u for u in urls)
    assert len(urls) >= 2 and all(set(u["headers"]) == {"Range"} for u in urls[1:])
    sent = sum(int(b) - int(a) + 1 for a, b in (u["headers"]["Range"][6:].split("-") for u in urls[1:]))
    assert sent < len(STORED[BAM]) // 3, "a region is the segments of its BGZF blocks, not the file"


async def test_empty_answers_are_valid_files(env):
    """A reference with no records, or a start past its end, is a header and an EOF marker (htsget: empty result)."""
    for endpoint, accession, params in [("reads", BAM, {"referenceName": "1"}),
                                        ("reads", BAM, {"referenceName": "11", "start": 10**9}),
                                        ("variants", VCF, {"referenceName": "chrM", "start": 10**6, "end": 10**6 + 5}),
                                        ("reads", BAM, {"referenceName": "11", "start": 5, "end": 5})]:
        path = await env.follow(await env.ticket(endpoint, accession, **params), "empty")
        fmt = FILES[accession][0]
        assert records.header_text(fmt, path) == records.header_text(fmt, original(accession))
        assert not records.every_record(fmt, path)


# -- tickets refused ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoint", "accession", "params", "status", "name", "says"), [
    ("reads", BAM, {"format": "VCF"}, 400, "UnsupportedFormat", "BAM or CRAM"),
    ("reads", BAM, {"format": "CRAM"}, 400, "UnsupportedFormat", "does not convert it to CRAM"),
    ("variants", VCF, {"format": "BCF"}, 400, "UnsupportedFormat", "does not convert"),
    ("reads", BAM, {"class": "body"}, 400, "InvalidInput", "class must be 'header'"),
    ("reads", BAM, {"class": "header", "referenceName": "11"}, 400, "InvalidInput", "no other parameter"),
    ("reads", BAM, {"referenceName": "11", "start": 200, "end": 100}, 400, "InvalidRange", "greater than end"),
    ("reads", BAM, {"start": 100}, 400, "InvalidInput", "need a referenceName"),
    ("reads", BAM, {"referenceName": "*", "start": 100}, 400, "InvalidInput", "takes no start"),
    ("reads", BAM, {"referenceName": "chr11"}, 404, "NotFound", "no reference named 'chr11'"),
    ("variants", VCF, {"referenceName": "*"}, 400, "InvalidInput", "reads endpoint only"),
    ("variants", UNINDEXED, {"referenceName": "20"}, 404, "NotFound", "no index"),
    ("reads", BAM, {"fields": "QNAME,SEQUENCE"}, 400, "InvalidInput", "unknown field 'SEQUENCE'"),
    ("reads", BAM, {"tags": "NM,MD", "notags": "MD"}, 400, "InvalidInput", "both name MD"),
    ("reads", BAM, {"start": "one"}, 400, "InvalidInput", "does not match"),
    ("reads", BAM, {"referenceName": "11", "start": -1}, 400, "InvalidInput", "does not match"),
    ("reads", BAM, {"referenceName": "11", "end": 2**32}, 400, "InvalidInput", "does not match"),
    ("reads", BAM, {"encryptionScheme": "C4GH"}, 400, "InvalidInput", tickets.PUBLIC_KEY_HEADER),
    ("reads", BAM, {"encryptionScheme": "AES"}, 400, "UnsupportedFormat", "encryptionScheme"),
    ("reads", VCF, {}, 404, "NotFound", "no reads object"),
    ("variants", CRAM, {}, 404, "NotFound", "no variants object"),
    ("reads", "GDI-FI-FILE-404", {}, 404, "NotFound", "no reads object 'GDI-FI-FILE-404'"),
    ("reads", "x" * 300, {}, 404, "NotFound", "no reads object"),
])
async def test_a_refused_get_answers_htsgets_error_in_its_shape(env, endpoint, accession, params, status, name, says):
    assert says in await env.refused(status, name, endpoint, accession, **params)


async def test_fields_and_tags_that_htsget_allows_are_answered_with_whole_records(env):
    path = await env.follow(await env.ticket("reads", BAM, referenceName="11", start=5015000, end=5016000, fields="QNAME,POS",
                                 tags="NM", notags="OQ"), "fields")
    with records.opened("BAM", path) as f:
        assert any(r.query_sequence and r.has_tag("RG") for r in f.fetch(until_eof=True))


async def test_the_enforcement_points_refusals_come_out_as_htsget_errors(env):
    env.enforcer.refuse = 401
    response = await env.request("reads", BAM, referenceName="11")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    spec.check_error(response.json(), "InvalidAuthentication")
    env.enforcer.refuse = 403
    await env.refused(403, "PermissionDenied", "variants", VCF, body={"regions": [{"referenceName": "chrM"}]})
    env.enforcer.refuse = 404
    await env.refused(404, "NotFound", "reads", CRAM)


async def test_the_object_and_its_kind_are_checked_before_the_access_and_the_format_after_it(env):
    await env.refused(404, "NotFound", "reads", VCF)
    await env.refused(400, "InvalidRange", "reads", BAM, referenceName="11", start=5, end=4)
    assert env.enforcer.reads == []  # nothing read, nothing to audit
    await env.refused(400, "UnsupportedFormat", "reads", BAM, format="CRAM")
    assert len(env.enforcer.reads) == 1  # a format mismatch would tell the object's format: only after the access


@pytest.mark.parametrize(("body", "status", "name", "says"), [
    ({"regions": []}, 400, "InvalidInput", "region list is empty"),
    ({"regions": [{"referenceName": "11", "start": 5, "end": 5}]}, 400, "InvalidRange", "equal to end"),
    ({"regions": [{"referenceName": "11", "start": "5"}]}, 400, "InvalidInput", "start must be an integer"),
    ({"regions": [{"referenceName": "chr11"}]}, 404, "NotFound", "no reference named"),
    ({"class": "header", "regions": [{"referenceName": "11"}]}, 400, "InvalidInput", "no other parameter"),
    ({"format": "CRAM"}, 400, "UnsupportedFormat", "does not convert"),
    ([1, 2], 400, "InvalidInput", "JSON object"),
    ({"regions": [{"referenceName": "11"}] * (tickets.MAX_REGIONS + 1)}, 413, "PayloadTooLarge", "at most"),
])
async def test_a_refused_post_answers_htsgets_error_in_its_shape(env, body, status, name, says):
    assert says in await env.refused(status, name, "reads", BAM, body=body)


async def test_a_post_refuses_query_parameters_bodies_that_are_not_json_and_bodies_too_large(env):
    response = await env.http.post(f"/htsget/v1/reads/{BAM}?referenceName=11", json={"format": "BAM"})
    assert response.status_code == 400 and "not the query" in response.json()["htsget"]["message"]
    spec.check_error(response.json(), "InvalidInput")
    response = await env.http.post(f"/htsget/v1/reads/{BAM}", content=b"{regions:", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not JSON" in response.json()["htsget"]["message"]
    response = await env.http.post(f"/htsget/v1/reads/{BAM}", content=b" " * (tickets.MAX_POST_BYTES + 1))
    assert response.status_code == 413
    spec.check_error(response.json(), "PayloadTooLarge")


async def test_a_crypt4gh_ticket_needs_a_usable_readers_key(env):
    for headers in (None, {tickets.PUBLIC_KEY_HEADER: "bm90IGEga2V5"},
                    {tickets.PUBLIC_KEY_HEADER: base64.b64encode(bytes(32)).decode()}):
        await env.refused(400, "InvalidInput", "reads", BAM, headers=headers, encryptionScheme="c4gh")
    await env.refused(400, "InvalidInput", "reads", BAM, body={"encryptionScheme": "C4GH"})
    assert env.enforcer.reads == []


# -- service-info and the OpenAPI ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "datatype", "formats"), [
    ("/htsget/v1/service-info", None, ["BAM", "CRAM", "VCF", "BCF"]),
    ("/htsget/v1/reads/service-info", "reads", ["BAM", "CRAM"]),
    ("/htsget/v1/variants/service-info", "variants", ["VCF", "BCF"]),
])
async def test_service_info_says_htsget_1_3_its_formats_and_that_records_come_whole(env, path, datatype, formats):
    response = await env.http.get(path)
    assert response.status_code == 200
    body = response.json()
    spec.check("htsgetServiceInfo", body)
    assert body["type"] == {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"}
    assert body["htsget"] == {**({"datatype": datatype} if datatype else {}), "formats": formats,
                              "fieldsParameterEffective": False, "tagsParametersEffective": False}


async def test_every_htsget_route_documents_what_it_answers(env):
    from genomebus.gateway.app import create_app

    paths = create_app(Settings(node_id="FI")).openapi()["paths"]
    ticket = {"200", "400", "401", "403", "404", "500", "503"}
    for endpoint in ("reads", "variants"):
        get, post = paths[f"/htsget/v1/{endpoint}/{{id}}"]["get"], paths[f"/htsget/v1/{endpoint}/{{id}}"]["post"]
        assert set(get["responses"]) == ticket and set(post["responses"]) == ticket | {"413"}
        for operation in (get, post):
            assert list(operation["responses"]["200"]["content"]) == [tickets.TICKET_MEDIA_TYPE]
            assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/HtsgetError"}
        names = {p["name"] for p in get["parameters"]}
        assert names >= {"id", "format", "class", "referenceName", "start", "end", "tags", "notags",
                         "encryptionScheme", tickets.PUBLIC_KEY_HEADER}
        assert ("fields" in names) == (endpoint == "reads")
        body = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
        assert set(body) >= {"format", "class", "tags", "notags", "regions", "encryptionScheme"}
        assert paths[f"/htsget/v1/{endpoint}/service-info"]["get"]["responses"].keys() == {"200", "500"}
