"""The fetch SDK against a gateway played by ``httpx.MockTransport``: DRS, signed data URLs, htsget tickets.

``FakeGateway`` answers as the node's gateway does: DRS objects to anybody, access URLs and htsget
tickets for a bearer token with a grant (401 without a token or with a bad one, 403 without a grant),
404 for an unknown id, data
URLs that honour ``Range``, htsget tickets with a ``data:`` header block and ranged URLs. Every
request is kept, so what the client sent (and to whom the token went) is asserted too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import crypt4gh.lib
import httpx
import pytest
from crypt4gh import sodium

from genomebus.gateway.reader_keys import parse_public_key
from genomebus.infra.settings import Settings
from genomebus.producers.commands import GatewayUnavailable
from genomebus.producers.fetch import (
    PUBLIC_KEY_HEADER,
    FetchClient,
    FetchRefused,
    IntegrityError,
    InvalidRegion,
    NoSuchAccess,
    Region,
    crypt4gh_body_size,
    crypt4gh_header_size,
    decode_data_uri,
    kind_of,
    parse_region,
    public_key_header,
)
from tests.data import DATA

BASE = "http://gateway.test"
TOKEN = "granted-token"
VCF = (DATA / "variants" / "sample1-bcbio-cancer.vcf.gz").read_bytes()
BAM = (DATA / "reads" / "htsnexus_test_NA12878.bam").read_bytes()[:300_000]
READER_SECRET = bytes(range(1, 33))
READER_PUBLIC = sodium.derive_pk(READER_SECRET)
READER_KEY_FILE = (b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n" + base64.b64encode(READER_PUBLIC)
                   + b"\n-----END CRYPT4GH PUBLIC KEY-----\n")


class FakeGateway:
    """Two objects (a VCF, a BAM) of a controlled dataset; ``TOKEN`` holds a grant, ``no-grant`` does not."""

    def __init__(self, *, corrupt: bool = False, short: bool = False, sha256: str | None = None) -> None:
        self.objects = {
            "GDI-FI-FILE-00000001": ("calls.vcf.gz", "application/vnd.ga4gh.vcf", VCF),
            "GDI-FI-FILE-00000002": ("reads.bam", "application/vnd.ga4gh.bam", BAM),
        }
        self.corrupt, self.short, self.sha256 = corrupt, short, sha256
        self.requests: list[httpx.Request] = []

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(self.answer))

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.strip("/").split("/")
        if parts[:1] == ["data"]:
            return self.data(request, parts[2])
        if parts[:4] == ["ga4gh", "drs", "v1", "objects"]:
            object_id = parts[4]
            if object_id not in self.objects:
                return drs_error(404, f"no object {object_id}")
            if len(parts) == 5:  # object metadata is public; the bytes are not
                return httpx.Response(200, json=self.drs_object(object_id))
            return self.refused(request) or self.access(request, object_id, parts[6])
        if parts[:2] == ["htsget", "v1"]:
            return self.refused(request) or self.ticket(request, parts[2], parts[3])
        return httpx.Response(404)

    def refused(self, request: httpx.Request) -> httpx.Response | None:
        auth = request.headers.get("authorization")
        if auth is None:
            return error_for(request, 401, "a bearer token is required for a controlled dataset")
        if auth == "Bearer no-grant":
            return error_for(request, 403, "no grant for GDI-FI-DATASET-001")
        if auth != f"Bearer {TOKEN}":
            return error_for(request, 401, "the token has expired")
        return None

    def drs_object(self, object_id: str) -> dict[str, Any]:
        name, mime, data = self.objects[object_id]
        return {"id": object_id, "name": name, "size": len(data), "mime_type": mime,
                "checksums": [{"type": "sha-256", "checksum": self.sha256 or hashlib.sha256(data).hexdigest()},
                              {"type": "md5", "checksum": hashlib.md5(data).hexdigest()}],  # noqa: S324
                "access_methods": [{"type": "https", "access_id": "https"}, {"type": "https", "access_id": "c4gh"}]}

    def access(self, request: httpx.Request, object_id: str, access_id: str) -> httpx.Response:
        if access_id == "c4gh":
            key = parse_public_key(request.headers[PUBLIC_KEY_HEADER])  # the gateway's own parser
            return httpx.Response(200, json={
                "url": f"{BASE}/data/objects/{object_id}?token=c4gh-{key.hex()}", "headers": []})
        return httpx.Response(200, json={"url": f"{BASE}/data/objects/{object_id}?token=signed",
                                         "headers": ["X-Data-Ticket: kept"]})

    def data(self, request: httpx.Request, object_id: str) -> httpx.Response:
        token = parse_qs(urlsplit(str(request.url)).query)["token"][0]
        data = self.objects[object_id][2]
        if token.startswith("c4gh-"):
            out = io.BytesIO()
            crypt4gh.lib.encrypt([(0, os.urandom(32), bytes.fromhex(token[5:]))], io.BytesIO(data), out)
            return httpx.Response(200, content=out.getvalue()[: -1 if self.short else None])
        if token != "signed":
            return error_for(request, 401, "the data URL has expired")
        if self.corrupt:
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        if self.short:
            data = data[:-10]
        if "range" in request.headers:
            start, end = request.headers["range"].removeprefix("bytes=").split("-")
            return httpx.Response(206, content=data[int(start):int(end) + 1])
        return httpx.Response(200, content=data)

    def ticket(self, request: httpx.Request, endpoint: str, object_id: str) -> httpx.Response:
        data = self.objects[object_id][2]
        header = base64.b64encode(data[:1000]).decode()
        return httpx.Response(200, json={"htsget": {"format": request.url.params["format"], "urls": [
            {"url": f"data:application/vnd.ga4gh.vcf;base64,{header}", "class": "header"},
            {"url": f"{BASE}/data/objects/{object_id}?token=signed", "headers": {"Range": "bytes=1000-4999"},
             "class": "body"},
            {"url": "data:,%1F%8B", "class": "body"},
        ]}})


def drs_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"msg": message, "status_code": status, "detail": message})


def error_for(request: httpx.Request, status: int, message: str) -> httpx.Response:
    if request.url.path.startswith("/htsget/"):
        name = {401: "InvalidAuthentication", 403: "PermissionDenied"}[status]
        return httpx.Response(status, json={"htsget": {"error": name, "message": message}})
    if request.url.path.startswith("/data/"):
        return httpx.Response(status, json={"status": status, "detail": message})
    return drs_error(status, message)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "node", gateway_public_url=BASE)


async def test_a_download_is_verified_and_renamed_into_place(settings, tmp_path):
    gateway = FakeGateway()
    seen: list[tuple[int, int | None]] = []
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        fetched = await client.download("GDI-FI-FILE-00000001", tmp_path / "calls.vcf.gz",
                                        progress=lambda done, total: seen.append((done, total)))

    assert fetched.verified and fetched.size == len(VCF)
    assert fetched.sha256 == hashlib.sha256(VCF).hexdigest()
    assert (tmp_path / "calls.vcf.gz").read_bytes() == VCF
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.vcf.gz"]  # no .part left
    assert seen[0] == (0, len(VCF)) and seen[-1] == (len(VCF), len(VCF))
    drs, access, data = gateway.requests
    assert access.url.path == "/ga4gh/drs/v1/objects/GDI-FI-FILE-00000001/access/https"
    assert drs.headers["authorization"] == access.headers["authorization"] == f"Bearer {TOKEN}"
    # The data URL gets the access URL's headers, never the bearer token.
    assert "authorization" not in data.headers and data.headers["x-data-ticket"] == "kept"


@pytest.mark.parametrize(("gateway", "complaint"), [
    (FakeGateway(corrupt=True), "the SHA-256 of what was received is"),
    (FakeGateway(short=True), "received"),
    (FakeGateway(sha256="0" * 64), "the DRS record says " + "0" * 64),
])
async def test_bytes_that_are_not_the_drs_records_leave_no_file(settings, tmp_path, gateway, complaint):
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        with pytest.raises(IntegrityError, match=complaint):
            await client.download("GDI-FI-FILE-00000001", tmp_path / "calls.vcf.gz")
    assert list(tmp_path.iterdir()) == []


async def test_an_existing_file_is_kept_unless_overwrite_is_asked(settings, tmp_path):
    target = tmp_path / "calls.vcf.gz"
    target.write_bytes(b"mine")
    gateway = FakeGateway()
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        with pytest.raises(FileExistsError):
            await client.download("GDI-FI-FILE-00000001", target)
        assert target.read_bytes() == b"mine" and gateway.requests == []  # nothing was asked
        await client.download("GDI-FI-FILE-00000001", target, overwrite=True)
    assert target.read_bytes() == VCF


@pytest.mark.parametrize(("token", "status", "detail"), [
    (None, 401, "a bearer token is required for a controlled dataset"),
    ("stale", 401, "the token has expired"),
    ("no-grant", 403, "no grant for GDI-FI-DATASET-001"),
])
async def test_a_refusal_carries_its_status_and_the_gateways_words(settings, tmp_path, token, status, detail):
    async with FetchClient(settings, token, http=FakeGateway().client()) as client:
        for call in (lambda: client.download("GDI-FI-FILE-00000001", tmp_path / "x"),
                     lambda: client.region("GDI-FI-FILE-00000001", "1:100-200", tmp_path / "y")):
            with pytest.raises(FetchRefused) as refused:
                await call()
            assert (refused.value.status, refused.value.detail) == (status, detail)
    assert list(tmp_path.iterdir()) == []


async def test_an_htsget_refusal_is_read_from_its_own_error_shape(settings, tmp_path):
    gateway = FakeGateway()
    obj = gateway.drs_object("GDI-FI-FILE-00000001")  # known already, so the first request is htsget's
    async with FetchClient(settings, "no-grant", http=gateway.client()) as client:
        with pytest.raises(FetchRefused) as refused:
            await client.region("GDI-FI-FILE-00000001", "1", tmp_path / "y", obj=obj)
    assert refused.value.status == 403 and refused.value.detail == "no grant for GDI-FI-DATASET-001"
    assert [r.url.path for r in gateway.requests] == ["/htsget/v1/variants/GDI-FI-FILE-00000001"]


async def test_an_unknown_object_is_404(settings, tmp_path):
    async with FetchClient(settings, TOKEN, http=FakeGateway().client()) as client:
        with pytest.raises(FetchRefused) as refused:
            await client.download("GDI-FI-FILE-00000404", tmp_path / "x")
    assert refused.value.status == 404 and "no object GDI-FI-FILE-00000404" in str(refused.value)


async def test_a_gateway_that_does_not_answer_is_unavailable(settings, tmp_path):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(down))
    async with FetchClient(settings, TOKEN, http=http) as client:
        with pytest.raises(GatewayUnavailable, match="does not answer"):
            await client.download("GDI-FI-FILE-00000001", tmp_path / "x")


async def test_a_region_follows_every_ticket_url_in_order(settings, tmp_path):
    gateway = FakeGateway()
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        fetched = await client.region("GDI-FI-FILE-00000001", "chr1:1,000-2,000", tmp_path / "region.vcf.gz")

    expected = VCF[:1000] + VCF[1000:5000] + b"\x1f\x8b"
    assert (tmp_path / "region.vcf.gz").read_bytes() == expected
    assert fetched.size == len(expected) and fetched.sha256 == hashlib.sha256(expected).hexdigest()
    assert not fetched.verified
    _, ticket, block = gateway.requests
    assert ticket.url.path == "/htsget/v1/variants/GDI-FI-FILE-00000001"
    assert dict(ticket.url.params) == {"referenceName": "chr1", "start": "999", "end": "2000", "format": "VCF"}
    assert ticket.headers["authorization"] == f"Bearer {TOKEN}"
    assert block.headers["range"] == "bytes=1000-4999" and "authorization" not in block.headers


async def test_reads_go_to_the_reads_endpoint_in_their_format(settings, tmp_path):
    gateway = FakeGateway()
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        await client.region("GDI-FI-FILE-00000002", "11", tmp_path / "r.bam")
    ticket = gateway.requests[1]
    assert ticket.url.path == "/htsget/v1/reads/GDI-FI-FILE-00000002"
    assert dict(ticket.url.params) == {"referenceName": "11", "format": "BAM"}


async def test_a_crypt4gh_copy_is_for_the_readers_key_and_decrypts_to_the_object(settings, tmp_path):
    gateway = FakeGateway()
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        fetched = await client.crypt4gh("GDI-FI-FILE-00000001", tmp_path / "calls.vcf.gz.c4gh", READER_KEY_FILE)

    stored = (tmp_path / "calls.vcf.gz.c4gh").read_bytes()
    plain = io.BytesIO()
    crypt4gh.lib.decrypt([(0, READER_SECRET, None)], io.BytesIO(stored), plain)
    assert plain.getvalue() == VCF
    assert fetched.size == len(stored) and not fetched.verified
    access = gateway.requests[1]
    assert access.url.path.endswith("/access/c4gh")
    assert base64.b64decode(access.headers[PUBLIC_KEY_HEADER]) == READER_KEY_FILE


async def test_a_crypt4gh_copy_of_the_wrong_size_leaves_no_file(settings, tmp_path):
    async with FetchClient(settings, TOKEN, http=FakeGateway(short=True).client()) as client:
        with pytest.raises(IntegrityError, match="the Crypt4GH body has"):
            await client.crypt4gh("GDI-FI-FILE-00000001", tmp_path / "x.c4gh", READER_KEY_FILE)
    assert list(tmp_path.iterdir()) == []


async def test_an_access_method_the_object_does_not_offer_is_said_before_any_data(settings, tmp_path):
    gateway = FakeGateway()
    obj = {**gateway.drs_object("GDI-FI-FILE-00000001"), "access_methods": [{"type": "https", "access_id": "https"}]}
    async with FetchClient(settings, TOKEN, http=gateway.client()) as client:
        with pytest.raises(NoSuchAccess, match="offers no 'c4gh' access"):
            await client.crypt4gh("GDI-FI-FILE-00000001", tmp_path / "x.c4gh", READER_KEY_FILE, obj=obj)
    assert gateway.requests == []


async def test_a_dataset_is_a_bundle_whose_files_are_fetched_one_by_one(settings, tmp_path):
    bundle = {"id": "GDI-FI-DATASET-001", "name": "trios", "size": 10, "checksums": [{"type": "sha-256",
              "checksum": "0" * 64}], "contents": [{"id": "GDI-FI-FILE-00000001", "name": "calls.vcf.gz"}]}
    async with FetchClient(settings, TOKEN, http=FakeGateway().client()) as client:
        with pytest.raises(NoSuchAccess, match=r"a DRS bundle\) of 1 files; fetch each by its own id "
                                               r"\(GDI-FI-FILE-00000001\)"):
            await client.download("GDI-FI-DATASET-001", tmp_path / "x", obj=bundle)


# -- regions, data: URIs, Crypt4GH sizes ------------------------------------------------------------


@pytest.mark.parametrize(("text", "region", "query"), [
    ("chr1:1000-2000", Region("chr1", 1000, 2000), {"referenceName": "chr1", "start": "999", "end": "2000"}),
    ("chr1:1-1", Region("chr1", 1, 1), {"referenceName": "chr1", "start": "0", "end": "1"}),
    ("1:1,000,000-1,000,100", Region("1", 1_000_000, 1_000_100),
     {"referenceName": "1", "start": "999999", "end": "1000100"}),
    ("chrX:500", Region("chrX", 500), {"referenceName": "chrX", "start": "499"}),
    ("chr20", Region("chr20"), {"referenceName": "chr20"}),
    ("{HLA-A*01:01:01:01}", Region("HLA-A*01:01:01:01"), {"referenceName": "HLA-A*01:01:01:01"}),
    ("{HLA-A*01:01:01:01}:100-200", Region("HLA-A*01:01:01:01", 100, 200),
     {"referenceName": "HLA-A*01:01:01:01", "start": "99", "end": "200"}),
    ("HLA-A*01:01:01:01:100-200", Region("HLA-A*01:01:01:01", 100, 200),
     {"referenceName": "HLA-A*01:01:01:01", "start": "99", "end": "200"}),
    ("chrUn_KI270742v1:HERV", Region("chrUn_KI270742v1:HERV"), {"referenceName": "chrUn_KI270742v1:HERV"}),
])
def test_a_samtools_region_becomes_htsgets_zero_based_half_open_one(text, region, query):
    assert parse_region(text) == region
    assert region.to_htsget() == query


@pytest.mark.parametrize(("text", "complaint"), [
    ("", "is not a region"),
    ("*", "is not a region"),
    ("chr1:0-10", "count from 1"),
    ("chr1:200-100", "the end is before the start"),
    ("chr1:100-", "the positions must be start or start-end"),
    ("chr1:-100", "the positions must be start or start-end"),
    ("chr 1:1-2", "is not a region"),
    ("chr1:1-99999999999", "beyond 4294967295"),
    ("{HLA-A*01:01", "a braced name is"),
    ("{HLA-A*01:01}100", "a braced name is"),
    ("{}", "is not a region"),
])
def test_a_region_that_is_not_one_is_refused(text, complaint):
    with pytest.raises(InvalidRegion, match=complaint):
        parse_region(text)


def test_data_uris_in_base64_and_percent_encoding():
    assert decode_data_uri("data:application/vnd.ga4gh.bam;base64,QkFNAQ==") == b"BAM\x01"
    assert decode_data_uri("data:,%1F%8B%08") == b"\x1f\x8b\x08"
    assert decode_data_uri("data:text/plain,a%20b") == b"a b"
    with pytest.raises(IntegrityError):
        decode_data_uri("data:;base64,not base64!")
    with pytest.raises(IntegrityError):
        decode_data_uri("data:nocomma")


def test_the_kind_comes_from_the_media_type_or_else_the_name():
    assert kind_of({"mime_type": "application/vnd.ga4gh.cram"}) == ("reads", "CRAM")
    assert kind_of({"mime_type": "application/vnd.ga4gh.bcf"}) == ("variants", "BCF")
    assert kind_of({"mime_type": "application/octet-stream", "name": "x.vcf.gz"}) == ("variants", "VCF")
    with pytest.raises(NoSuchAccess, match="download it whole"):
        kind_of({"id": "GDI-FI-FILE-00000003", "mime_type": "application/gzip", "name": "r1.fastq.gz"})


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536 + 5])
def test_the_crypt4gh_sizes_match_what_the_library_writes(size):
    out = io.BytesIO()
    crypt4gh.lib.encrypt([(0, os.urandom(32), READER_PUBLIC)], io.BytesIO(os.urandom(size)), out)
    stored = out.getvalue()
    header = crypt4gh_header_size(stored)
    assert header is not None and len(stored) - header == crypt4gh_body_size(size)
    assert crypt4gh_header_size(stored[: header - 1]) is None  # a header cut short is not yet a header


def test_the_public_key_header_is_what_the_gateway_reads():
    assert parse_public_key(public_key_header(READER_KEY_FILE)) == READER_PUBLIC
    with pytest.raises(ValueError, match="not a Crypt4GH public key file"):
        public_key_header(b"ssh-ed25519 AAAA")
