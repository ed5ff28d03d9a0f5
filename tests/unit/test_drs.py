"""DRS objects as the router builds them, checked against the DRS 1.5 schemas; the reader's Crypt4GH key header."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from crypt4gh import sodium

from genomebus.gateway.media_types import content_disposition, media_type
from genomebus.gateway.problems import Problem
from genomebus.gateway.reader_keys import CLIENT_PUBLIC_KEY_HEADER, parse_public_key, recipient_of
from genomebus.gateway.routers import drs
from genomebus.infra.settings import DEV_CENTRAL_ISSUER, DEV_ISSUER, Settings, TrustedIssuer
from tests import drs_spec
from tests.data import DATA

SETTINGS = Settings(node_id="FI", gateway_port=8443, gateway_host="node.example.org", profile="local",
                    trusted_issuers=(TrustedIssuer(issuer="https://broker.example.org", kinds=("passport",),
                                                   jwks_uri="https://broker.example.org/jwks"),
                                     TrustedIssuer(issuer="https://login.example.org", kinds=("login",),
                                                   jwks_uri="https://login.example.org/jwks")))
NOW = datetime(2024, 6, 7, 12, 0, tzinfo=UTC)


def file_row(n: int, *, alias: str | None = None, fmt: str = "BAM", filename: str = "reads.bam",
             access_rights: str = "controlled") -> dict:
    content = f"file {n}".encode()
    return {"drs_id": f"GDI-FI-FILE-{n:08d}", "accession": f"GDI-FI-FILE-{n:08d}", "dataset_id": "GDI-FI-DATASET-7",
            "filename": filename, "alias": alias, "format": fmt, "size": 100 * n,
            "sha256": hashlib.sha256(content).hexdigest(), "md5": hashlib.md5(content).hexdigest(),  # noqa: S324
            "uploaded_at": NOW, "updated_at": NOW, "access_rights": access_rights, "dataset_state": "released"}


def test_a_blob_is_a_drs_object_with_both_access_methods():
    row = file_row(1, alias="htsnexus_test_NA12878")
    body = drs.blob(SETTINGS, row).model_dump(mode="json", exclude_none=True)
    assert drs_spec.strict_errors("DrsObject", body) == []
    assert body["id"] == "GDI-FI-FILE-00000001"
    assert body["self_uri"] == "drs://node.example.org:8443/GDI-FI-FILE-00000001"
    assert body["checksums"] == [{"checksum": row["sha256"], "type": "sha-256"}, {"checksum": row["md5"], "type": "md5"}]
    assert body["aliases"] == ["htsnexus_test_NA12878"]
    assert body["mime_type"] == "application/vnd.ga4gh.bam"
    assert [(m["type"], m["access_id"]) for m in body["access_methods"]] == [("https", "https"), ("https", "c4gh")]
    assert "contents" not in body


def test_controlled_data_needs_a_passport_or_a_login_and_public_data_nothing():
    controlled = drs.authorizations(SETTINGS, "X", "controlled").model_dump(exclude_none=True)
    assert controlled["supported_types"] == ["PassportAuth", "BearerAuth"]
    assert controlled["passport_auth_issuers"] == ["https://broker.example.org", DEV_CENTRAL_ISSUER,
                                                   "http://node.example.org:8443"]
    assert controlled["bearer_auth_issuers"] == ["https://login.example.org", DEV_ISSUER]
    assert drs_spec.strict_errors("Authorizations", controlled) == []
    public = drs.authorizations(SETTINGS, "X", "public").model_dump(exclude_none=True)
    assert public == {"drs_object_id": "X", "supported_types": ["None"]}


def test_a_bundle_sums_its_members_and_checksums_their_sorted_digests():
    members = [file_row(2, filename="b.vcf.gz", fmt="VCF"), file_row(1), file_row(3, filename="reads.bam")]
    dataset = {"id": "GDI-FI-DATASET-7", "title": "Cohort", "released_at": NOW, "registered_at": NOW,
               "updated_at": NOW}
    body = drs.bundle(SETTINGS, dataset, members).model_dump(mode="json", exclude_none=True)
    assert drs_spec.strict_errors("DrsObject", body) == []
    assert body["size"] == 600
    shas = sorted(m["sha256"] for m in members)
    assert body["checksums"][0] == {"type": "sha-256",
                                    "checksum": hashlib.sha256("".join(shas).encode()).hexdigest()}
    assert "access_methods" not in body
    # Names are unique in a bundle: two files called reads.bam are told apart by their accession.
    assert [c["name"] for c in body["contents"]] == ["b.vcf.gz", "GDI-FI-FILE-00000001_reads.bam",
                                                     "GDI-FI-FILE-00000003_reads.bam"]
    assert body["contents"][0]["drs_uri"] == ["drs://node.example.org:8443/GDI-FI-FILE-00000002"]


def test_the_bundle_checksum_is_the_specs_example_computed():
    # The spec's own example: md5(concat(sort(72794b6d, 5e089d29))) = md5("5e089d2972794b6d").
    assert drs.bundle_checksum(["72794b6d", "5e089d29"], "md5") == \
        hashlib.md5(b"5e089d2972794b6d").hexdigest()  # noqa: S324
    assert drs.bundle_checksum([], "sha256") == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(("fmt", "filename", "expected"), [
    ("BAM", "a.bam", "application/vnd.ga4gh.bam"), ("CRAM", "a.cram", "application/vnd.ga4gh.cram"),
    ("VCF", "a.vcf.gz", "application/vnd.ga4gh.vcf"), ("BCF", "a.bcf", "application/vnd.ga4gh.bcf"),
    ("FASTQ", "a.fastq.gz", "application/gzip"), ("FASTQ", "a.fq", "text/plain"),
    ("SOMETHING", "a", "application/octet-stream")])
def test_media_types(fmt, filename, expected):
    assert media_type({"format": fmt, "filename": filename}) == expected


def test_content_disposition_keeps_quotes_and_non_ascii_out_of_the_plain_name():
    assert content_disposition("a.bam") == 'attachment; filename="a.bam"'
    assert content_disposition('x"y\\z.bam') == \
        "attachment; filename=\"x_y_z.bam\"; filename*=UTF-8''x%22y%5Cz.bam"


ALICE_PUB = (DATA / "crypt4gh" / "alice.pub").read_bytes()
ALICE_RAW = base64.b64decode(ALICE_PUB.splitlines()[1])


def test_a_key_file_or_a_raw_key_in_base64_is_the_readers_key():
    assert parse_public_key(base64.b64encode(ALICE_PUB).decode()) == ALICE_RAW
    assert parse_public_key(base64.b64encode(ALICE_PUB.replace(b"\n", b"\r\n")).decode()) == ALICE_RAW
    assert parse_public_key(base64.b64encode(ALICE_RAW).decode()) == ALICE_RAW
    other = sodium.derive_pk(bytes(range(32)))
    assert recipient_of({CLIENT_PUBLIC_KEY_HEADER: base64.b64encode(other).decode()}) == \
        base64.b64encode(other).decode()


@pytest.mark.parametrize("value", [
    "not base64!", base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode(),
    base64.b64encode(bytes(32)).decode(),  # a low-order point: no key exchange possible
    base64.b64encode(ALICE_PUB.replace(b"PUBLIC", b"PRIVATE")).decode(),
    base64.b64encode(b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n!!!\n-----END CRYPT4GH PUBLIC KEY-----\n").decode(),
    base64.b64encode(b"-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAA\n-----END CRYPT4GH PUBLIC KEY-----\n").decode(),
    "A" * 5000,
])
def test_anything_else_is_refused_with_a_reason(value):
    with pytest.raises(ValueError):
        parse_public_key(value)
    with pytest.raises(Problem) as refused:
        recipient_of({CLIENT_PUBLIC_KEY_HEADER: value})
    assert refused.value.status == 400 and refused.value.code == "invalid-public-key"


def test_a_missing_key_is_a_400_naming_the_header():
    with pytest.raises(Problem) as refused:
        recipient_of({})
    assert refused.value.status == 400 and CLIENT_PUBLIC_KEY_HEADER in refused.value.detail
