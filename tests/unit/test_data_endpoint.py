"""The data endpoint over HTTP, on a real Crypt4GH object in memory: modes, ranges, HEAD, what is audited.

The enforcement point is stood in for by one that verifies the data URL for real and records each
read it is asked to allow (the real one is exercised on the stack in tests/integration/test_drs.py).
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import hashlib
import io
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import crypt4gh.lib
import httpx
import pytest
from crypt4gh import sodium
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomebus.gateway import problems
from genomebus.gateway.enforcement import Allowed, Read
from genomebus.gateway.problems import Problem
from genomebus.gateway.routers import data
from genomebus.infra import data_urls
from genomebus.infra.archive_store import SEGMENT_SIZE, ArchivedObject, BytesSource
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys, ensure_visa_keys
from tests.data import DATA

ARCHIVE_SECRET = bytes(range(32))
READER_SECRET = bytes(range(1, 33))
READER_PUBLIC = sodium.derive_pk(READER_SECRET)
PLAIN = (DATA / "reads" / "htsnexus_test_NA12878.bam").read_bytes()[: 3 * SEGMENT_SIZE + 777]


def _encrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.encrypt([(0, os.urandom(32), sodium.derive_pk(ARCHIVE_SECRET))], io.BytesIO(data), out)
    return out.getvalue()


STORED = _encrypt(PLAIN)
OBJECT = {"file_id": "f", "dataset_id": "GDI-FI-DATASET-1", "filename": "reads ä.bam", "alias": "my-reads",
          "format": "BAM", "size": len(PLAIN), "sha256": hashlib.sha256(PLAIN).hexdigest(),
          "md5": hashlib.md5(PLAIN).hexdigest(), "accession": "GDI-FI-FILE-00000001",  # noqa: S324
          "drs_id": "GDI-FI-FILE-00000001", "archive_bucket": "archive", "archive_key": "k", "index_key": None,
          "encrypted_size": len(STORED), "uploaded_at": datetime.now(UTC), "updated_at": datetime.now(UTC),
          "dataset_state": "released", "access_rights": "controlled"}


class _Conn:
    async def fetchrow(self, query: str, object_id: str) -> dict[str, Any] | None:
        return OBJECT if object_id in (OBJECT["drs_id"], OBJECT["alias"]) else None


class _Pool:
    @asynccontextmanager
    async def acquire(self):
        yield _Conn()


class _Archive:
    """One shared ArchivedObject, as the gateway's Archive caches it for every request."""

    def __init__(self) -> None:
        self.obj: ArchivedObject | None = None

    async def open(self, bucket: str, key: str, size: int | None = None) -> ArchivedObject:
        if self.obj is None:
            self.obj = await ArchivedObject.open(BytesSource(STORED), ARCHIVE_SECRET)
        return self.obj


class _Enforcer:
    """Verifies the data URL as the real one does, and records the reads it allows."""

    def __init__(self, settings: Settings, keys: VisaKeys) -> None:
        self.settings, self.visa_keys = settings, keys
        self.reads: list[tuple[str, Read]] = []

    async def authorize_data_url(self, request: Any, token: str | None, *, object_id: str, dataset_id: str,
                                 read: Read) -> tuple[Allowed, DataTicket]:
        try:
            ticket = data_urls.verify(self.visa_keys, self.settings, token or "")
        except data_urls.DataUrlError as exc:
            raise Problem(401, "url-invalid", str(exc)) from None
        if ticket.object_id != object_id:
            raise Problem(401, "url-invalid", "another object")
        self.reads.append((request.method, read))
        return Allowed(dataset_id, ticket.user_id, ticket.grant_id, "data_url", f"audit-{len(self.reads)}"), ticket


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("node"), gateway_port=8080)
    ensure_visa_keys(settings.visa_keys_path)
    keys = VisaKeys.load(settings.visa_keys_path)
    app = FastAPI()
    problems.install(app)
    app.include_router(data.router)
    app.state.settings, app.state.pool, app.state.archive = settings, _Pool(), _Archive()
    app.state.enforcer = _Enforcer(settings, keys)
    return settings, keys, app


def url(env, mode: str = "plain", path_id: str = OBJECT["drs_id"], object_id: str = OBJECT["drs_id"]) -> str:
    settings, keys, _ = env
    ticket = DataTicket(object_id=object_id, dataset_id=OBJECT["dataset_id"], mode=mode, user_id="alice",
                        grant_id="g", credential="bearer", issuer=settings.gateway_url,
                        recipient=base64.b64encode(READER_PUBLIC).decode() if mode != "plain" else None)
    return f"/data/objects/{path_id}?sig={data_urls.sign(keys, settings, ticket)}"


@asynccontextmanager
async def client(env):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=env[2]), base_url="http://test") as http:
        yield http


def last_read(env) -> tuple[str, Read]:
    return env[2].state.enforcer.reads[-1]


async def test_the_whole_object_decrypted_with_its_headers(env):
    async with client(env) as http:
        response = await http.get(url(env))
    assert response.status_code == 200
    assert response.content == PLAIN
    assert response.headers["content-length"] == str(len(PLAIN))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{OBJECT["sha256"]}"'
    assert response.headers["content-type"] == "application/vnd.ga4gh.bam"
    assert response.headers["content-disposition"] == \
        "attachment; filename=\"reads _.bam\"; filename*=UTF-8''reads%20%C3%A4.bam"
    assert response.headers["x-audit-event"].startswith("audit-")
    assert last_read(env) == ("GET", Read(object_id=OBJECT["drs_id"], byte_range=None))


async def test_the_path_may_name_the_object_by_its_alias(env):
    async with client(env) as http:
        response = await http.get(url(env, path_id="my-reads"))
    assert response.status_code == 200 and response.content == PLAIN


async def test_an_unknown_object_is_404_before_any_decision(env):
    before = len(env[2].state.enforcer.reads)
    async with client(env) as http:
        response = await http.get(url(env, path_id="GDI-FI-FILE-99999999"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert len(env[2].state.enforcer.reads) == before


async def test_a_url_for_another_object_or_without_token_is_refused(env):
    async with client(env) as http:
        other = await http.get(url(env, object_id="GDI-FI-FILE-00000002"))
        none = await http.get(f"/data/objects/{OBJECT['drs_id']}")
    assert other.status_code == 401 and none.status_code == 401


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-0", 0, 1), (f"bytes={len(PLAIN) - 1}-", len(PLAIN) - 1, len(PLAIN)), ("bytes=-100", len(PLAIN) - 100,
                                                                                     len(PLAIN)),
    ("bytes=65530-65545", 65530, 65546),  # across a segment boundary
    ("bytes=1000-", 1000, len(PLAIN)),
])
async def test_a_single_range_is_206_with_its_content_range(env, header, start, end):
    async with client(env) as http:
        response = await http.get(url(env), headers={"Range": header})
    assert response.status_code == 206
    assert response.content == PLAIN[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(PLAIN)}"
    assert response.headers["content-length"] == str(end - start)
    assert last_read(env)[1].byte_range == f"bytes={start}-{end - 1}"


def parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode() + response.content)
    assert message.get_content_type() == "multipart/byteranges" and not message.defects
    return [(p["Content-Range"], p.get_payload(decode=True)) for p in message.iter_parts()]


async def test_several_ranges_are_a_multipart_body(env):
    async with client(env) as http:
        response = await http.get(url(env), headers={"Range": "bytes=-10,0-9,100-199,150-299"})
    assert response.status_code == 206
    assert int(response.headers["content-length"]) == len(response.content)
    n = len(PLAIN)
    assert parts(response) == [(f"bytes 0-9/{n}", PLAIN[:10]), (f"bytes 100-299/{n}", PLAIN[100:300]),
                               (f"bytes {n - 10}-{n - 1}/{n}", PLAIN[-10:])]
    assert last_read(env)[1].byte_range == f"bytes=0-9,100-299,{n - 10}-{n - 1}"


async def test_an_unsatisfiable_range_is_416_and_an_invalid_one_is_ignored(env):
    async with client(env) as http:
        refused = await http.get(url(env), headers={"Range": f"bytes={len(PLAIN)}-"})
        ignored = await http.get(url(env), headers={"Range": "bytes=9-1"})
        stale = await http.get(url(env), headers={"Range": "bytes=0-0", "If-Range": '"another"'})
        fresh = await http.get(url(env), headers={"Range": "bytes=0-0", "If-Range": f'"{OBJECT["sha256"]}"'})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{len(PLAIN)}"
    assert refused.json()["status"] == 416
    assert ignored.status_code == 200 and ignored.content == PLAIN
    assert stale.status_code == 200 and stale.content == PLAIN
    assert fresh.status_code == 206 and fresh.content == PLAIN[:1]


async def test_head_answers_the_headers_without_the_bytes_and_is_audited(env):
    async with client(env) as http:
        response = await http.head(url(env), headers={"Range": "bytes=0-0"})
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(PLAIN))
    assert response.headers["etag"] == f'"{OBJECT["sha256"]}"'
    assert last_read(env) == ("HEAD", Read(object_id=OBJECT["drs_id"], byte_range=None))


def _decrypt(data: bytes) -> bytes:
    out = io.BytesIO()
    crypt4gh.lib.decrypt([(0, READER_SECRET, None)], io.BytesIO(data), out)
    return out.getvalue()


async def test_a_crypt4gh_copy_decrypts_with_the_readers_key_and_ignores_ranges(env):
    async with client(env) as http:
        first = await http.get(url(env, mode="c4gh"), headers={"Range": "bytes=0-0"})
        second = await http.get(url(env, mode="c4gh"))
        head = await http.head(url(env, mode="c4gh"))
    assert first.status_code == 200 and first.headers["accept-ranges"] == "none"
    assert "etag" not in first.headers
    assert first.headers["content-length"] == str(len(first.content)) == head.headers["content-length"]
    assert first.headers["content-disposition"].endswith(".bam.c4gh")
    assert _decrypt(first.content) == PLAIN == _decrypt(second.content)
    assert first.content != second.content  # a fresh header each time
    assert last_read(env)[1].byte_range is None


async def test_the_stored_body_is_served_by_range_for_htsget(env):
    obj = await env[2].state.archive.open("archive", "k")
    body = STORED[obj.body_offset:]
    async with client(env) as http:
        whole = await http.get(url(env, mode="c4gh-body"))
        ranged = await http.get(url(env, mode="c4gh-body"), headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200 and whole.content == body
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(body)}"
    assert (_decrypt(obj.header_for(READER_PUBLIC) + whole.content)) == PLAIN


async def test_concurrent_readers_of_one_object_each_get_their_bytes(env):
    wanted = [(i * 20000, i * 20000 + 70000 + i) for i in range(8)]
    async with client(env) as http:
        answers = await asyncio.gather(*(http.get(url(env), headers={"Range": f"bytes={a}-{b - 1}"})
                                         for a, b in wanted))
    assert [r.content for r in answers] == [PLAIN[a:min(b, len(PLAIN))] for a, b in wanted]


_spec = st.one_of(
    st.tuples(st.integers(0, len(PLAIN) - 1), st.integers(0, len(PLAIN) + 10)).map(lambda t: f"{t[0]}-{max(t)}"),
    st.integers(0, len(PLAIN) - 1).map(lambda a: f"{a}-"),
    st.integers(1, len(PLAIN) + 10).map(lambda n: f"-{n}"))


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_spec, min_size=1, max_size=5))
async def test_any_satisfiable_range_set_served_over_http_is_its_slices(env, specs):
    async with client(env) as http:
        response = await http.get(url(env), headers={"Range": "bytes=" + ",".join(specs)})
    assert response.status_code == 206
    if response.headers["content-type"].startswith("multipart/byteranges"):
        got = parts(response)
    else:
        got = [(response.headers["content-range"], response.content)]
    for content_range, payload in got:
        first, last = content_range.removeprefix("bytes ").split("/")[0].split("-")
        assert payload == PLAIN[int(first):int(last) + 1]
    covered = {i for content_range, _ in got
               for i in range(int(content_range.split()[1].split("-")[0]),
                              int(content_range.split("-")[1].split("/")[0]) + 1)}
    asked = set()
    for spec in specs:
        a, b = spec.split("-")
        asked |= set(range(int(a), min(len(PLAIN), int(b) + 1) if b else len(PLAIN))) if a else \
            set(range(max(0, len(PLAIN) - int(b)), len(PLAIN)))
    assert covered == asked
