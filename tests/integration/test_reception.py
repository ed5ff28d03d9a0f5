"""Reception end to end on the real stack: submit → QC → Crypt4GH archive → release, and the bad cases."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from genomebus.infra import s3
from genomebus.infra.stack import pid_alive, read_state
from genomebus.producers.commands import send_command
from genomebus.producers.datasets import describe_dataset, register_dataset
from genomebus.producers.submit import submit_file
from tests.data import DATA
from tests.integration.helpers import cli, new_dataset_id

pytestmark = pytest.mark.integration

BAM = DATA / "reads" / "htsnexus_test_NA12878.bam"
VCF = DATA / "variants" / "NA18537.vcf.gz"


async def register(stack, publisher, pool=None) -> str:
    dataset_id = new_dataset_id()
    dataset = describe_dataset(dataset_id=dataset_id, title="reception test", data_use=("DUO:0000042",))
    await register_dataset(stack, dataset, actor="steward-test", publisher=publisher)
    return dataset_id


async def wait_file(stack, file_id, states: set[str], timeout: float = 180) -> dict:
    """Poll the gateway until the file reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as http:
        while time.monotonic() < deadline:
            response = await http.get(f"/files/{file_id}")
            if response.status_code == 200:
                body = response.json()
                if body["state"] in states:
                    return body
            await asyncio.sleep(0.25)
    raise AssertionError(f"file {file_id} never reached {states}; last seen {body.get('state')}")


async def archive_objects(stack) -> list[dict]:
    async with s3.client(stack) as client:
        listing = await client.list_objects_v2(Bucket=stack.s3_archive_bucket)
    return listing.get("Contents", [])


async def test_good_files_are_checked_archived_and_the_dataset_released(stack, publisher, tmp_path):
    dataset_id = await register(stack, publisher)
    bam = await submit_file(stack, dataset_id, BAM, alias=f"reception-NA12878-{dataset_id}", actor="seq-centre",
                            publisher=publisher)
    vcf = await submit_file(stack, dataset_id, VCF, actor="seq-centre", publisher=publisher)

    early = cli(stack, "dataset", "release", dataset_id)  # almost surely before the archive is done
    bam_file = await wait_file(stack, bam.file_id, {"archived", "qc_failed"})
    vcf_file = await wait_file(stack, vcf.file_id, {"archived", "qc_failed"})
    if early.returncode != 0:  # the usual case: refused, naming what is missing
        assert early.returncode == 5
        assert "file_not_archived" in early.stderr

    assert bam_file["state"] == "archived", bam_file
    assert vcf_file["state"] == "archived", vcf_file
    assert bam_file["accession"].startswith("GDI-FI-FILE-")
    assert bam_file["alias"] == f"reception-NA12878-{dataset_id}"
    assert bam_file["qc_metrics"]["reads"] > 0
    assert vcf_file["qc_metrics"]["records"] > 0
    assert [e["type"] for e in bam_file["history"]] == ["file.uploaded", "file.qc_passed", "file.archived"]
    by_accession = httpx.get(f"{stack.gateway_url}/files/{bam_file['accession']}").json()
    assert by_accession["id"] == str(bam.file_id)

    # The inbox copy is gone once the archive holds the encrypted one.
    async with s3.client(stack) as client:
        inbox = await client.list_objects_v2(Bucket=stack.s3_inbox_bucket, Prefix=f"{dataset_id}/")
    assert inbox.get("KeyCount", 0) == 0

    if early.returncode != 0:
        released = cli(stack, "dataset", "release", dataset_id)
        assert released.returncode == 0, released.stdout + released.stderr
    body = httpx.get(f"{stack.gateway_url}/datasets/{dataset_id}").json()
    assert body["state"] == "released"
    assert {f["accession"] for f in body["files"]} == {bam_file["accession"], vcf_file["accession"]}

    again = cli(stack, "dataset", "release", dataset_id)
    assert again.returncode == 5 and "released" in again.stderr

    withdrawn = cli(stack, "dataset", "withdraw", dataset_id, "--reason", "consent withdrawn")
    assert withdrawn.returncode == 0, withdrawn.stderr
    gone = httpx.get(f"{stack.gateway_url}/datasets/{dataset_id}")
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{stack.gateway_url}/files/{bam.file_id}").status_code == 410
    history = cli(stack, "audit", "history", dataset_id, "--json")
    assert "dataset.withdrawn" in history.stdout  # the events stay on the log


def _truncated_bam(tmp_path: Path) -> Path:
    data = BAM.read_bytes()
    path = tmp_path / "truncated.bam"
    path.write_bytes(data[: len(data) // 2])
    return path


def _unsorted_vcf(tmp_path: Path) -> Path:
    with gzip.open(VCF, "rt") as fh:
        lines = fh.read().splitlines()
    header = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")]
    body[0], body[5] = body[5], body[0]
    path = tmp_path / "unsorted.vcf"
    path.write_text("\n".join(header + body) + "\n")
    return path


def _broken_header_vcf(tmp_path: Path) -> Path:
    with gzip.open(VCF, "rt") as fh:
        lines = [line for line in fh.read().splitlines() if not line.startswith("#CHROM")]
    path = tmp_path / "broken-header.vcf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bam_declared_as_vcf(tmp_path: Path) -> Path:
    path = tmp_path / "actually-a-bam.vcf.gz"
    shutil.copy(BAM, path)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.bam"
    path.write_bytes(b"")
    return path


def _wrong_magic(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-magic.bam"
    path.write_bytes(b"NOTABAM!" + os.urandom(4096))
    return path


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (_truncated_bam, "truncated"),
        (_wrong_magic, None),
        (_unsorted_vcf, "unsorted"),
        (_broken_header_vcf, "invalid_header"),
        (_bam_declared_as_vcf, "format_mismatch"),
        (_empty, "empty_file"),
    ],
)
async def test_a_bad_file_fails_qc_with_reasons_and_blocks_the_release(stack, publisher, tmp_path, make, code):
    dataset_id = await register(stack, publisher)
    submitted = await submit_file(stack, dataset_id, make(tmp_path), actor="seq-centre", publisher=publisher)
    failed = await wait_file(stack, submitted.file_id, {"qc_failed", "archived"})
    assert failed["state"] == "qc_failed"
    codes = {r["code"] for r in failed["qc_reasons"]}
    assert codes, failed
    if code is not None:
        assert code in codes
    else:
        assert codes & {"unknown_format", "format_mismatch"}
    assert failed["qc_message"]

    refused = cli(stack, "dataset", "release", dataset_id)
    assert refused.returncode == 5
    assert "qc_failed" in refused.stderr
    if code == "truncated":  # a refused file keeps the accession it was given: the auditor can follow it
        trail = cli(stack, "audit", "history", failed["accession"], "--json")
        assert trail.returncode == 0, trail.stderr
        assert [e["type"] for e in json.loads(trail.stdout)] == ["file.uploaded", "file.qc_failed"]


async def test_the_same_file_uploaded_twice_is_one_file_and_one_archive_copy(stack, publisher):
    dataset_id = await register(stack, publisher)
    first = await submit_file(stack, dataset_id, VCF, actor="seq-centre", publisher=publisher)
    first_body = await wait_file(stack, first.file_id, {"archived"})
    before = {o["Key"] for o in await archive_objects(stack)}

    # The same bytes again: the SDK sees them archived already and sends nothing.
    second = await submit_file(stack, dataset_id, VCF, actor="seq-centre", publisher=publisher)
    assert second.file_id == first.file_id
    assert second.skipped and second.archived_as == first_body["accession"]
    # Sent anyway (a client that does not ask first): the decider refuses it as already archived.
    again = await send_command(stack, second.command, actor="seq-centre", publisher=publisher)
    assert not again.accepted and [r.code for r in again.reasons] == ["already_archived"]
    body = httpx.get(f"{stack.gateway_url}/files/{first.file_id}").json()
    assert body["state"] == "archived"
    assert [e["type"] for e in body["history"]] == ["file.uploaded", "file.qc_passed", "file.archived"]
    assert {o["Key"] for o in await archive_objects(stack)} == before  # no second archive copy


async def test_a_qc_worker_killed_mid_file_processes_it_once_in_effect(stack, publisher, tmp_path):
    dataset_id = await register(stack, publisher)
    big = tmp_path / "big.vcf.gz"
    big.write_bytes((DATA / "variants" / "HG02102.vcf.gz").read_bytes())
    qc_pid = read_state(stack.data_dir)["components"]["qc"]["pid"]
    submitted = await submit_file(stack, dataset_id, big, actor="seq-centre", publisher=publisher)
    await asyncio.sleep(0.3)  # let the worker pick the file up; a kill before that is also a valid crash
    os.kill(qc_pid, signal.SIGKILL)

    body = await wait_file(stack, submitted.file_id, {"archived", "qc_failed"}, timeout=300)
    assert body["state"] == "archived", body
    new_pid = read_state(stack.data_dir)["components"]["qc"]["pid"]
    assert new_pid != qc_pid and pid_alive(new_pid)
    types = [e["type"] for e in body["history"]]
    assert types.count("file.qc_passed") == 1  # a redelivered verdict has the same id: one in effect
    assert types.count("file.archived") == 1
