"""The demo's storage chapter: a granted researcher reads archived data over DRS and htsget; another is refused.

alice holds a grant for dataset 001 (the access chapter gave it). She fetches the BAM over DRS by
the alias it was submitted with and checks its SHA-256 against the DRS record, reads one region
of the BAM and one of a VCF through htsget (pysam counts the records), and receives a Crypt4GH
copy for her own key, which she decrypts. carol, a researcher without a grant, is refused. Both
show in the audit topic, with the object and the byte range or region they asked for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import crypt4gh.lib
from crypt4gh import sodium

from genomebus.infra.settings import Settings

BAM_ALIAS = "htsnexus_test_NA12878"
BAM_REGION = "11:4999977-5002147"
VCF_REGION = "21:10000001-10500000"


def storage_story(settings: Settings, dataset_id: str, say: Callable[[str], None], out: Callable[[str], None],
                  hint: Callable[..., str]) -> bool:
    from genomebus.infra.visas import issue_dev_token

    alice = issue_dev_token(settings, sub="alice", roles=["researcher"], ttl_s=3600)
    carol = issue_dev_token(settings, sub="carol", roles=["researcher"], ttl_s=3600)
    with tempfile.TemporaryDirectory(prefix="genomebus-demo-fetch-", dir=settings.data_dir) as scratch:
        return asyncio.run(_story(settings, dataset_id, Path(scratch), alice, carol, say, out, hint))


async def _story(settings: Settings, dataset_id: str, scratch: Path, alice: str, carol: str,
                 say: Callable[[str], None], out: Callable[[str], None], hint: Callable[..., str]) -> bool:
    import pysam

    pysam.set_verbosity(0)  # htslib's warnings about the files' own headers are not the story
    from genomebus.producers.fetch import FetchClient, FetchRefused

    since = datetime.now(UTC)
    async with FetchClient(settings, alice) as client:
        obj = await client.drs_object(BAM_ALIAS)
        sha = next(c["checksum"] for c in obj["checksums"] if c["type"] == "sha-256")
        say("alice fetches the BAM over GA4GH DRS by the alias it was submitted with, as "
            f"`{hint(settings, 'fetch', BAM_ALIAS, '-o', 'NA12878.bam')}` would with her token in GENOMEBUS_TOKEN "
            f"(`{hint(settings, 'token', 'issue', '--sub', 'alice', '--role', 'researcher')}`)")
        out(f"   DRS object {obj['id']} ({obj['self_uri']}): {obj['name']}, {obj['size']:,} bytes, access methods "
            + ", ".join(m["access_id"] for m in obj["access_methods"]))
        bam = await client.download(BAM_ALIAS, scratch / "NA12878.bam", obj=obj)
        out(f"   received {bam.size:,} bytes through a signed, short-lived URL (decrypted by the gateway as they "
            f"streamed); sha256 {bam.sha256} {'matches' if bam.sha256 == sha else 'DOES NOT match'} the DRS record")
        if bam.sha256 != sha:
            return False

        say(f"alice reads one region of the BAM and one of a VCF through htsget (regions 1-based, inclusive, as in "
            f"samtools): `{hint(settings, 'fetch', BAM_ALIAS, '--region', BAM_REGION)}`")
        region = await client.region(BAM_ALIAS, BAM_REGION, scratch / "region.bam")
        name, span = BAM_REGION.split(":")
        start, end = (int(x) for x in span.split("-"))
        with pysam.AlignmentFile(str(region.path), check_sq=False) as reads:
            n = sum(1 for r in reads if r.reference_name == name and r.reference_start < end
                    and (r.reference_end or r.reference_start + 1) >= start)
        out(f"   {BAM_REGION}: {region.size:,} bytes (of {bam.size:,}), {n} reads, read by pysam")
        vcf_id = await _object_named(client, settings, dataset_id, "HG02102.vcf.gz")
        variants = await client.region(vcf_id, VCF_REGION, scratch / "region.vcf.gz")
        name, span = VCF_REGION.split(":")
        start, end = (int(x) for x in span.split("-"))
        with pysam.VariantFile(str(variants.path)) as vcf:
            n = sum(1 for r in vcf if r.chrom == name and start <= r.pos <= end)
        out(f"   {vcf_id} {VCF_REGION}: {variants.size:,} bytes, {n:,} variants, read by pysam")

        say("alice asks for a Crypt4GH copy for her own key (header re-encrypted for her; the body streams as "
            "archived, never decrypted on the node), as "
            f"`{hint(settings, 'fetch', BAM_ALIAS, '--crypt4gh-key', 'alice.pub')}` would with the public key "
            "`crypt4gh-keygen` made her")
        secret = os.urandom(32)
        pub_file = (b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n" + base64.b64encode(sodium.derive_pk(secret))
                    + b"\n-----END CRYPT4GH PUBLIC KEY-----\n")
        copy = await client.crypt4gh(BAM_ALIAS, scratch / "NA12878.bam.c4gh", pub_file, obj=obj)
        plain = io.BytesIO()
        with copy.path.open("rb") as encrypted:
            crypt4gh.lib.decrypt([(0, secret, None)], encrypted, plain)
        decrypted = hashlib.sha256(plain.getvalue()).hexdigest()
        out(f"   {copy.size:,} bytes of Crypt4GH; decrypted with alice's secret key: sha256 {decrypted} "
            f"{'matches' if decrypted == sha else 'DOES NOT match'}")
        if decrypted != sha:
            return False

    say("carol, a researcher without a grant, asks for the same object")
    async with FetchClient(settings, carol) as client:
        try:
            await client.download(BAM_ALIAS, scratch / "carol.bam")
            out("[red]   carol was served the data[/red]")
            return False
        except FetchRefused as exc:
            out(f"   refused: {exc.status} — {exc.detail}")

    say("Both appear in the audit topic, with the object and the bytes or region they asked for (regions as htsget "
        "counts them: from 0, end excluded)")
    for event in await _audit_since(settings, since, {"alice", "carol"}):
        data = event.data
        what = data.byte_range or (f"region {data.region}" if data.region else "whole object")
        out(f"   {event.time:%H:%M:%S}  {data.decision:<5} {data.user_id or '-':<6} {data.reason:<13} {what:<30} "
            f"{data.resource}")
    return True


async def _object_named(client: Any, settings: Settings, dataset_id: str, filename: str) -> str:
    bundle = await client.drs_object(dataset_id)
    return next(c["id"] for c in bundle.get("contents", []) if c["name"] == filename)


async def _audit_since(settings: Settings, since: datetime, users: set[str]) -> list[Any]:
    """This chapter's data reads on the audit topic (by time, as the log has them), oldest first."""
    from genomebus.infra import kafka
    from genomebus.schemas.envelope import decode

    events = [decode(record.value) async for record in kafka.read_log(settings, [settings.topic("audit")])]
    mine = [e for e in events if e.time >= since and e.data.user_id in users and e.data.object_id]
    return sorted(mine, key=lambda e: e.time)
