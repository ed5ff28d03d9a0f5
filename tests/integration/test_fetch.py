"""`genomebus fetch` on the real stack: the CLI a researcher runs, against DRS and htsget of the gateway.

A released, controlled dataset holds a VCF (with an alias) and a BAM; one researcher has a grant,
another has none. The whole VCF arrives verified, by accession and by alias; a region of it is a VCF
pysam reads, holding every record of the region and not the whole file; a Crypt4GH copy decrypts
with the researcher's key; the researcher without a grant gets 403 and nothing on disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid

import crypt4gh.lib
import pysam
import pytest
from crypt4gh import sodium

from tests.integration.helpers import cli
from tests.integration.storage import BAM, BIG_VCF, archived_dataset, granted, token

pytestmark = pytest.mark.integration

REGION = ("21", 20_000_000, 20_100_000)


@pytest.fixture(scope="module")
async def stored(stack, publisher):
    alias = f"fetch-calls-{uuid.uuid4().hex[:8]}"
    dataset = await archived_dataset(stack, publisher, [(BIG_VCF, alias), (BAM, None)])
    reader = f"fetch-reader-{uuid.uuid4().hex[:6]}"
    await granted(stack, reader, dataset)
    return dataset, alias, token(stack, reader, "researcher")


def fetch(stack, *args: str, token_: str | None = None):
    return cli(stack, "fetch", *args, *(["--token", token_] if token_ else []), timeout=300,
               env={"GENOMEBUS_TOKEN": ""})


async def test_the_whole_object_arrives_verified_by_accession_and_by_alias(stack, stored, tmp_path):
    dataset, alias, reader = stored
    expected = BIG_VCF.read_bytes()
    for name in (dataset.drs_id(BIG_VCF), alias):
        target = tmp_path / f"{name}.vcf.gz"
        result = fetch(stack, name, "-o", str(target), token_=reader)
        assert result.returncode == 0, result.stderr
        assert target.read_bytes() == expected
        assert result.stdout.splitlines() == [f"{target}: {len(expected):,} bytes, sha256 "
                                              f"{hashlib.sha256(expected).hexdigest()} (verified against the DRS record)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.vcf.gz" for n in (dataset.drs_id(BIG_VCF), alias))


async def test_a_region_is_a_vcf_pysam_reads_with_every_record_of_the_region(stack, stored, tmp_path):
    dataset, _, reader = stored
    chrom, start, end = REGION
    target = tmp_path / "region.vcf.gz"
    result = fetch(stack, dataset.drs_id(BIG_VCF), "--region", f"{chrom}:{start}-{end}", "-o", str(target),
                   token_=reader)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"(the records of {chrom}:{start}-{end})")

    with pysam.VariantFile(str(BIG_VCF)) as original:
        wanted = [(r.chrom, r.pos, r.ref) for r in original.fetch(chrom, start - 1, end)]  # pysam: 0-based, half open
        total = sum(1 for _ in original.fetch())
    with pysam.VariantFile(str(target)) as got:
        records = [(r.chrom, r.pos, r.ref) for r in got]
    assert wanted and set(wanted) <= set(records)
    assert len(records) < total  # a region, not the file
    assert {c for c, _, _ in records} == {chrom}


async def test_reads_of_a_region_come_from_the_reads_endpoint(stack, stored, tmp_path):
    dataset, _, reader = stored
    target = tmp_path / "region.bam"
    result = fetch(stack, dataset.drs_id(BAM), "--region", "11:4900000-5000000", "-o", str(target), token_=reader)
    assert result.returncode == 0, result.stderr
    with pysam.AlignmentFile(str(BAM), "rb") as original:
        wanted = {(r.query_name, r.flag, r.reference_start) for r in original.fetch("11", 4_899_999, 5_000_000)}
    with pysam.AlignmentFile(str(target), "rb") as got:
        records = {(r.query_name, r.flag, r.reference_start) for r in got}
    assert wanted and wanted <= records


async def test_a_crypt4gh_copy_opens_with_the_readers_key(stack, stored, tmp_path):
    dataset, _, reader = stored
    secret = bytes(range(7, 39))
    pub = tmp_path / "me.pub"
    pub.write_text("-----BEGIN CRYPT4GH PUBLIC KEY-----\n"
                   + base64.b64encode(sodium.derive_pk(secret)).decode()
                   + "\n-----END CRYPT4GH PUBLIC KEY-----\n")
    target = tmp_path / "copy.c4gh"
    result = fetch(stack, dataset.drs_id(BIG_VCF), "--crypt4gh-key", str(pub), "-o", str(target), token_=reader)
    assert result.returncode == 0, result.stderr
    plain = io.BytesIO()
    crypt4gh.lib.decrypt([(0, secret, None)], io.BytesIO(target.read_bytes()), plain)
    assert plain.getvalue() == BIG_VCF.read_bytes()


async def test_without_a_grant_or_a_token_nothing_is_fetched(stack, stored, tmp_path):
    dataset, _, _ = stored
    stranger = token(stack, f"fetch-stranger-{uuid.uuid4().hex[:6]}", "researcher")
    for args, code, needle in (
        ([dataset.drs_id(BIG_VCF)], 5, "apply with `genomebus access apply`"),
        ([dataset.drs_id(BIG_VCF), "--region", "21:1-100000000"], 5, "apply with `genomebus access apply`"),
    ):
        result = fetch(stack, *args, "-o", str(tmp_path / "x"), token_=stranger)
        assert result.returncode == code, (result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and needle in line and "Traceback" not in result.stderr
    anonymous = fetch(stack, dataset.drs_id(BIG_VCF), "-o", str(tmp_path / "x"))
    assert anonymous.returncode == 5, anonymous.stderr
    assert "no token was given" in anonymous.stderr
    assert list(tmp_path.iterdir()) == []
