"""DRS 1.5 and the data endpoint on the real stack: objects and bundles, access under grants, passports and
central visas, public data, ranges, Crypt4GH copies, signed URLs that expire or outlive their grant, withdrawn
datasets, concurrent readers, bulk requests, service-info; every JSON answer checked against the DRS schemas.

Only this module submits a file with the alias ``htsnexus_test_NA12878`` (aliases are unique per node).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import time
from typing import Any

import crypt4gh.keys
import crypt4gh.lib
import httpx
import pytest

from genomebus.gateway.reader_keys import CLIENT_PUBLIC_KEY_HEADER
from genomebus.infra import data_urls
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.readmodels import files
from genomebus.infra.settings import DEV_CENTRAL_ISSUER
from genomebus.infra.visas import VisaKeys, issue_dev_visa
from genomebus.producers.access import AccessClient
from genomebus.producers.datasets import withdraw_dataset
from tests import drs_spec
from tests.data import DATA
from tests.integration.storage import (BAM, BCF, VCF, archived_dataset, audit_events, bearer, granted, http,  # noqa: F401
                                       token)

pytestmark = pytest.mark.integration

DRS = "/ga4gh/drs/v1"
ALIAS = "htsnexus_test_NA12878"
ALICE_PUB = (DATA / "crypt4gh" / "alice.pub").read_bytes()
ALICE_SEC = crypt4gh.keys.get_private_key(str(DATA / "crypt4gh" / "alice.sec"), lambda: "")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
async def datasets(stack: Any, publisher: Any) -> dict[str, Any]:
    """A controlled dataset (the BAM under its alias, the VCF), a public one, and one to withdraw."""
    controlled, public, doomed = await asyncio.gather(
        archived_dataset(stack, publisher, [(BAM, ALIAS), (VCF, None)], title="DRS controlled"),
        archived_dataset(stack, publisher, [(BCF, None)], access_rights="public", title="DRS public"),
        archived_dataset(stack, publisher, [(VCF, None)], title="DRS to withdraw"))
    return {"controlled": controlled, "public": public, "doomed": doomed}


def assert_drs_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status_code"] == status and body["msg"]
    assert drs_spec.errors("Error", body) == []


async def audit_event(stack: Any, event_id: str) -> dict[str, Any]:
    events = await audit_events(stack)
    assert event_id in events, f"no audit event {event_id}"
    return events[event_id]


async def test_an_object_by_accession_and_by_alias(stack, datasets, http):
    controlled = datasets["controlled"]
    bam_id = controlled.drs_id(BAM)
    by_id = await http.get(f"{DRS}/objects/{bam_id}")
    by_alias = await http.get(f"{DRS}/objects/{ALIAS}")
    posted = await http.post(f"{DRS}/objects/{ALIAS}", json={"expand": False})
    assert by_id.status_code == by_alias.status_code == posted.status_code == 200, by_id.text
    body = by_id.json()
    assert body == by_alias.json() == posted.json()
    assert drs_spec.strict_errors("DrsObject", body) == []
    data = BAM.read_bytes()
    assert body["id"] == bam_id and body["name"] == BAM.name and body["size"] == len(data)
    assert {c["type"]: c["checksum"] for c in body["checksums"]} == {
        "sha-256": sha256(data), "md5": hashlib.md5(data).hexdigest()}  # noqa: S324
    assert body["aliases"] == [ALIAS]
    assert body["self_uri"] == f"drs://{stack.gateway_url.split('://')[1]}/{bam_id}"
    assert body["mime_type"] == "application/vnd.ga4gh.bam"
    assert {m["access_id"] for m in body["access_methods"]} == {"https", "c4gh"}
    assert_drs_error(await http.get(f"{DRS}/objects/GDI-FI-FILE-99999999"), 404)
    assert_drs_error(await http.post(f"{DRS}/objects/{bam_id}", json={"expand": "sometimes"}), 400)


async def test_a_released_dataset_is_a_bundle_of_its_files(datasets, http):
    controlled = datasets["controlled"]
    plain = await http.get(f"{DRS}/objects/{controlled.dataset_id}")
    expanded = await http.get(f"{DRS}/objects/{controlled.dataset_id}", params={"expand": "true"})
    assert plain.status_code == expanded.status_code == 200
    body = plain.json()
    assert drs_spec.strict_errors("DrsObject", body) == [] and drs_spec.strict_errors("DrsObject", expanded.json()) == []
    assert {c["id"] for c in body["contents"]} == {controlled.drs_id(BAM), controlled.drs_id(VCF)}
    assert {c["name"] for c in body["contents"]} == {BAM.name, VCF.name}
    assert expanded.json()["contents"] == body["contents"]  # no nested bundles to expand
    assert body["size"] == BAM.stat().st_size + VCF.stat().st_size
    shas = sorted([sha256(BAM.read_bytes()), sha256(VCF.read_bytes())])
    assert {"type": "sha-256", "checksum": sha256("".join(shas).encode())} in body["checksums"]
    # A bundle has no bytes of its own to hand out.
    assert_drs_error(await http.get(f"{DRS}/objects/{controlled.dataset_id}/access/https"), 404)


async def test_options_say_how_to_authorize(stack, datasets, http):
    bam_id, public_id = datasets["controlled"].drs_id(BAM), datasets["public"].drs_id(BCF)
    controlled = await http.options(f"{DRS}/objects/{bam_id}")
    public = await http.options(f"{DRS}/objects/{public_id}")
    assert controlled.status_code == public.status_code == 200
    assert drs_spec.strict_errors("Authorizations", controlled.json()) == []
    assert controlled.json()["supported_types"] == ["PassportAuth", "BearerAuth"]
    assert DEV_CENTRAL_ISSUER in controlled.json()["passport_auth_issuers"]
    assert stack.gateway_url in controlled.json()["passport_auth_issuers"]
    assert public.json() == {"drs_object_id": public_id, "supported_types": ["None"]}
    assert_drs_error(await http.options(f"{DRS}/objects/nothing-here"), 404)
    bulk = await http.request("OPTIONS", f"{DRS}/objects", json={"bulk_object_ids": [bam_id, "nothing-here"]})
    assert bulk.status_code == 200
    assert drs_spec.strict_errors("BulkAuthorizations", bulk.json()) == []
    assert bulk.json()["summary"] == {"requested": 2, "resolved": 1, "unresolved": 1}


async def test_access_needs_a_credential_and_a_grant(stack, datasets, http):
    controlled = datasets["controlled"]
    bam_id = controlled.drs_id(BAM)
    anonymous = await http.get(f"{DRS}/objects/{bam_id}/access/https")
    assert_drs_error(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert_drs_error(await http.get(f"{DRS}/objects/{bam_id}/access/https", headers=bearer(stack, "drs-nobody")),
                     403)
    assert_drs_error(await http.get(f"{DRS}/objects/{bam_id}/access/ftp", headers=bearer(stack, "drs-nobody")), 404)
    await granted(stack, "drs-reader", controlled)
    answer = await http.get(f"{DRS}/objects/{ALIAS}/access/https", headers=bearer(stack, "drs-reader"))
    assert answer.status_code == 200, answer.text
    assert drs_spec.strict_errors("AccessURL", answer.json()) == []
    event = await audit_event(stack, answer.headers["x-audit-event"])
    assert (event["type"], event["object_id"], event["user_id"]) == ("data.accessed", bam_id, "drs-reader")
    fetched = await http.get(answer.json()["url"])
    assert fetched.status_code == 200 and sha256(fetched.content) == sha256(BAM.read_bytes())
    assert fetched.headers["etag"] == f'"{sha256(BAM.read_bytes())}"'
    read = await audit_event(stack, fetched.headers["x-audit-event"])
    assert (read["type"], read["object_id"], read["credential"]) == ("data.accessed", bam_id, "data_url")


async def test_ranges_on_the_real_archive(stack, datasets, http):
    controlled = datasets["controlled"]
    await granted(stack, "drs-ranger", controlled)
    url = (await http.get(f"{DRS}/objects/{controlled.drs_id(BAM)}/access/https",
                          headers=bearer(stack, "drs-ranger"))).json()["url"]
    data = BAM.read_bytes()
    n = len(data)
    for header, expected, content_range in [("bytes=0-0", data[:1], f"bytes 0-0/{n}"),
                                            (f"bytes={n - 1}-{n - 1}", data[-1:], f"bytes {n - 1}-{n - 1}/{n}"),
                                            ("bytes=-70000", data[-70000:], f"bytes {n - 70000}-{n - 1}/{n}")]:
        got = await http.get(url, headers={"Range": header})
        assert (got.status_code, got.content, got.headers["content-range"]) == (206, expected, content_range)
    multi = await http.get(url, headers={"Range": "bytes=0-9,100000-100099"})
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/byteranges")
    assert data[:10] in multi.content and data[100000:100100] in multi.content
    read = await audit_event(stack, multi.headers["x-audit-event"])
    assert read["byte_range"] == "bytes=0-9,100000-100099"
    beyond = await http.get(url, headers={"Range": f"bytes={n}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{n}"


async def test_a_crypt4gh_copy_decrypts_with_the_readers_key(stack, datasets, http):
    controlled = datasets["controlled"]
    await granted(stack, "drs-c4gh", controlled)
    path = f"{DRS}/objects/{controlled.drs_id(VCF)}/access/c4gh"
    assert_drs_error(await http.get(path, headers=bearer(stack, "drs-c4gh")), 400)  # no key
    answer = await http.get(path, headers={**bearer(stack, "drs-c4gh"),
                                           CLIENT_PUBLIC_KEY_HEADER: base64.b64encode(ALICE_PUB).decode()})
    assert answer.status_code == 200, answer.text
    copy = await http.get(answer.json()["url"])
    assert copy.status_code == 200 and copy.headers["accept-ranges"] == "none"
    out = io.BytesIO()
    crypt4gh.lib.decrypt([(0, ALICE_SEC, None)], io.BytesIO(copy.content), out)
    assert out.getvalue() == VCF.read_bytes()


async def test_passports_and_central_visas_open_the_bytes(stack, datasets, http):
    controlled = datasets["controlled"]
    bam_id = controlled.drs_id(BAM)
    await granted(stack, "drs-passport", controlled)
    passport = (await http.get("/passport", headers=bearer(stack, "drs-passport"))).json()["passport"]
    own = await http.post(f"{DRS}/objects/{bam_id}/access/https", json={"passports": [passport]})
    assert own.status_code == 200, own.text
    assert sha256((await http.get(own.json()["url"])).content) == sha256(BAM.read_bytes())
    visa = issue_dev_visa(stack, sub="drs-central", dataset_id=controlled.dataset_id, ttl_s=600)
    central = await http.post(f"{DRS}/objects/{bam_id}/access/https", json={"passports": [visa]})
    assert central.status_code == 200, central.text
    fetched = await http.get(central.json()["url"], headers={"Range": "bytes=0-99"})
    assert fetched.status_code == 206 and fetched.content == BAM.read_bytes()[:100]
    read = await audit_event(stack, fetched.headers["x-audit-event"])
    assert (read["user_id"], read["issuer"], read["byte_range"]) == ("drs-central", DEV_CENTRAL_ISSUER,
                                                                     "bytes=0-99")
    other = issue_dev_visa(stack, sub="drs-central", dataset_id=datasets["doomed"].dataset_id, ttl_s=600)
    assert_drs_error(await http.post(f"{DRS}/objects/{bam_id}/access/https", json={"passports": [other]}), 403)
    assert_drs_error(await http.post(f"{DRS}/objects/{bam_id}/access/https", json={"passports": ["x.y.z"]}), 401)


async def test_public_data_needs_no_credential_and_is_still_audited(stack, datasets, http):
    public_id = datasets["public"].drs_id(BCF)
    answer = await http.get(f"{DRS}/objects/{public_id}/access/https")
    assert answer.status_code == 200, answer.text
    fetched = await http.get(answer.json()["url"], headers={"Range": "bytes=10-19"})
    assert fetched.status_code == 206 and fetched.content == BCF.read_bytes()[10:20]
    event = await audit_event(stack, fetched.headers["x-audit-event"])
    assert (event["type"], event["object_id"], event["byte_range"], event["reason"]) == (
        "data.accessed", public_id, "bytes=10-19", "public_dataset")


async def test_signed_urls_expire_and_name_one_object(stack, datasets, http):
    controlled = datasets["controlled"]
    keys = VisaKeys.load(stack.visa_keys_path)
    ticket = DataTicket(object_id=controlled.drs_id(VCF), dataset_id=controlled.dataset_id, user_id="drs-reader",
                        credential="bearer", issuer=stack.gateway_url)
    expired = data_urls.sign(keys, stack, ticket, ttl_s=60, now=time.time() - 3600)
    response = await http.get(f"/data/objects/{controlled.drs_id(VCF)}", params={"sig": expired})
    assert response.status_code == 401 and "www-authenticate" in response.headers
    fresh = data_urls.sign(keys, stack, ticket)
    elsewhere = await http.get(f"/data/objects/{controlled.drs_id(BAM)}", params={"sig": fresh})
    assert elsewhere.status_code == 401
    assert (await http.get(f"/data/objects/{controlled.drs_id(VCF)}", params={"sig": fresh + "x"})).status_code == 401
    assert (await http.get("/data/objects/GDI-FI-FILE-99999999", params={"sig": fresh})).status_code == 404


async def test_a_revoked_grant_stops_an_already_issued_url(stack, datasets, http):
    controlled = datasets["controlled"]
    application = await granted(stack, "drs-revoked", controlled)
    url = (await http.get(f"{DRS}/objects/{controlled.drs_id(VCF)}/access/https",
                          headers=bearer(stack, "drs-revoked"))).json()["url"]
    assert (await http.get(url)).status_code == 200
    async with AccessClient(stack, token(stack, "chair", f"dac_member:{controlled.dac_id}")) as chair:
        await chair.revoke(application["id"], controlled.dataset_id, "consent withdrawn")
    refused = await http.get(url)
    assert refused.status_code == 403 and refused.json()["reason"] == "revoked"


async def test_a_withdrawn_datasets_objects_are_gone(stack, publisher, datasets, http):
    doomed = datasets["doomed"]
    vcf_id = doomed.drs_id(VCF)
    await granted(stack, "drs-doomed", doomed)
    url = (await http.get(f"{DRS}/objects/{vcf_id}/access/https", headers=bearer(stack, "drs-doomed"))).json()["url"]
    assert (await http.get(f"{DRS}/objects/{vcf_id}")).status_code == 200
    outcome = await withdraw_dataset(stack, doomed.dataset_id, reason="consent withdrawn", actor="steward-test",
                                     publisher=publisher)
    assert outcome.accepted, outcome
    assert_drs_error(await http.get(f"{DRS}/objects/{vcf_id}"), 404)
    assert_drs_error(await http.get(f"{DRS}/objects/{doomed.dataset_id}"), 404)
    assert_drs_error(await http.get(f"{DRS}/objects/{vcf_id}/access/https", headers=bearer(stack, "drs-doomed")), 404)
    assert (await http.get(url)).status_code == 404


async def test_eight_concurrent_readers_each_get_the_object(stack, datasets, http):
    controlled = datasets["controlled"]
    await granted(stack, "drs-crowd", controlled)
    url = (await http.get(f"{DRS}/objects/{controlled.drs_id(BAM)}/access/https",
                          headers=bearer(stack, "drs-crowd"))).json()["url"]
    data = BAM.read_bytes()
    wanted = [None, None, None, None, (0, 70000), (65000, 200000), (len(data) - 5000, len(data)), (1, 2)]
    answers = await asyncio.gather(*(http.get(url, headers={"Range": f"bytes={w[0]}-{w[1] - 1}"} if w else {})
                                     for w in wanted))
    for w, answer in zip(wanted, answers, strict=True):
        assert answer.content == (data if w is None else data[w[0]:w[1]])


async def test_bulk_requests(stack, datasets, http):
    controlled = datasets["controlled"]
    bam_id, vcf_id = controlled.drs_id(BAM), controlled.drs_id(VCF)
    too_many = [bam_id] * (stack.drs_max_bulk_request_length + 1)
    assert_drs_error(await http.post(f"{DRS}/objects", json={"bulk_object_ids": too_many}), 413)
    mixed = await http.post(f"{DRS}/objects", json={"bulk_object_ids": [bam_id, "GDI-FI-FILE-99999999", ALIAS]})
    assert mixed.status_code == 200
    body = mixed.json()
    assert drs_spec.strict_errors("BulkObjects", body) == []
    assert body["summary"] == {"requested": 3, "resolved": 2, "unresolved": 1}
    assert body["unresolved_drs_objects"] == [{"error_code": 404, "object_ids": ["GDI-FI-FILE-99999999"]}]
    assert [o["id"] for o in body["resolved_drs_object"]] == [bam_id, bam_id]

    await granted(stack, "drs-bulk", controlled)
    pairs = [{"bulk_object_id": bam_id, "bulk_access_ids": ["https", "ftp"]},
             {"bulk_object_id": vcf_id, "bulk_access_ids": ["https", "c4gh"]},
             {"bulk_object_id": "GDI-FI-FILE-99999999", "bulk_access_ids": ["https"]}]
    access = await http.post(f"{DRS}/objects/access", headers=bearer(stack, "drs-bulk"),
                             json={"bulk_object_access_ids": pairs})
    assert access.status_code == 200, access.text
    result = access.json()
    assert drs_spec.strict_errors("BulkAccessURLs", result) == []
    assert result["summary"] == {"requested": 5, "resolved": 2, "unresolved": 3}
    assert {u["error_code"]: u["object_ids"] for u in result["unresolved_drs_objects"]} == {
        400: [vcf_id],  # c4gh without the reader's key
        404: [bam_id, "GDI-FI-FILE-99999999"],  # no access id ftp; no such object
    }
    stranger = await http.post(f"{DRS}/objects/access", headers=bearer(stack, "drs-stranger"),
                               json={"bulk_object_access_ids": pairs[:1]})
    assert stranger.json()["unresolved_drs_objects"] == [{"error_code": 403, "object_ids": [bam_id]},
                                                         {"error_code": 404, "object_ids": [bam_id]}]
    resolved = {(r["drs_object_id"], r["drs_access_id"]): r["url"] for r in result["resolved_drs_object_access_urls"]}
    assert set(resolved) == {(bam_id, "https"), (vcf_id, "https")}
    assert sha256((await http.get(resolved[(vcf_id, "https")])).content) == sha256(VCF.read_bytes())
    too_many_pairs = [{"bulk_object_id": bam_id, "bulk_access_ids": ["https"]}] * \
        (stack.drs_max_bulk_request_length + 1)
    assert_drs_error(await http.post(f"{DRS}/objects/access", json={"bulk_object_access_ids": too_many_pairs}), 413)


async def test_service_info_counts_what_is_served(stack, datasets, pool, http):
    answer = await http.get(f"{DRS}/service-info")
    assert answer.status_code == 200
    body = answer.json()
    assert drs_spec.errors("ServiceInfo", body) == []
    assert body["type"] == {"group": "org.ga4gh", "artifact": "drs", "version": "1.5.0"}
    count, total = await files.object_totals(pool)
    assert body["drs"] == {"maxBulkRequestLength": stack.drs_max_bulk_request_length, "objectCount": count,
                           "totalObjectSize": total}
    assert body["maxBulkRequestLength"] == stack.drs_max_bulk_request_length
    assert count >= 3 and total >= BAM.stat().st_size + VCF.stat().st_size + BCF.stat().st_size
