"""The archive worker against the real broker, database and object store.

It runs in-process on its own topics and consumer group, so it neither depends on
nor disturbs the archive worker the node itself may run.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from genomebus.consumers import archive
from genomebus.consumers.archive import ArchiveLedger, Archivist, HashingSource, accession_for, decrypt_stream
from genomebus.infra import kafka, s3
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient
from genomebus.schemas.envelope import Envelope, decode, new_envelope
from genomebus.schemas.reception import FileQcPassed, FileUploaded
from tests.data import DATA
from tests.integration.helpers import dead_letters, new_dataset_id

pytestmark = pytest.mark.integration
VARIANTS = DATA / "variants"


@dataclass
class Node:
    settings: Settings
    publisher: kafka.Publisher
    s3: Any


@pytest.fixture(scope="module")
async def node(stack: Settings) -> AsyncIterator[Node]:
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={"topic_prefix": f"it-archive-{run}.", "consumer_retry_max_s": 1.0})
    await kafka.ensure_topics(settings)
    stop = asyncio.Event()
    worker = asyncio.create_task(archive.main(settings, stop, worker=archive.archive_worker(f"archive-it-{run}")))
    try:
        async with kafka.Publisher(settings) as publisher, s3.client(settings) as client:
            yield Node(settings, publisher, client)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)


def a_vcf() -> tuple[bytes, bytes]:
    return (VARIANTS / "NA18537.vcf.gz").read_bytes(), (VARIANTS / "NA18537.vcf.gz.tbi").read_bytes()


async def put_in_inbox(node: Node, dataset_id: str, data: bytes, *, index: bytes | None = None,
                       claimed: bytes | None = None) -> Envelope[FileUploaded]:
    """Upload ``data`` (and its index) to the inbox; the event describes ``claimed`` (default: ``data``)."""
    claimed = data if claimed is None else claimed
    sha = hashlib.sha256(claimed).hexdigest()
    key = f"{dataset_id}/{uuid.uuid4().hex}/sample.vcf.gz"
    await node.s3.put_object(Bucket=node.settings.s3_inbox_bucket, Key=key, Body=data)
    if index is not None:
        await node.s3.put_object(Bucket=node.settings.s3_inbox_bucket, Key=key + ".tbi", Body=index)
    event = FileUploaded(
        file_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{dataset_id}:{sha}"), dataset_id=dataset_id,
        filename="sample.vcf.gz", bucket=node.settings.s3_inbox_bucket, object_key=key, size=len(claimed),
        sha256=sha, md5=hashlib.md5(claimed).hexdigest(), declared_format="VCF",
    )
    return new_envelope(event, source=node.settings.source, actor="uploader")


def qc_passed(upload: Envelope[FileUploaded]) -> Envelope[FileQcPassed]:
    data = FileQcPassed(file_id=upload.data.file_id, dataset_id=upload.data.dataset_id, format="VCF",
                        metrics={"records": 952})
    return new_envelope(data, source=upload.source, actor="qc", cause=upload)


async def archived_events(node: Node, file_id: uuid.UUID, *, count: int = 1, timeout: float = 60) -> list[Envelope]:
    """Every ``file.archived`` for ``file_id`` once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        async for record in kafka.read_log(node.settings, [node.settings.topic("reception")]):
            event = decode(record.value)
            if event.type == "file.archived" and event.data.file_id == file_id:
                found.append(event)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def exists(node: Node, bucket: str, key: str) -> bool:
    try:
        await node.s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


async def decrypted_sha256(node: Node, key: str) -> str:
    body = await (await node.s3.get_object(Bucket=node.settings.s3_archive_bucket, Key=key))["Body"].read()
    secret, _ = load_archive_keys(node.settings)
    return decrypt_stream(HashingSource(io.BytesIO(body).read), secret)[1].sha256


async def test_a_checked_file_is_encrypted_verified_accessioned_and_leaves_the_inbox(node: Node) -> None:
    data, index = a_vcf()
    dataset_id = new_dataset_id()
    upload = await put_in_inbox(node, dataset_id, data, index=index)

    await node.publisher.publish(upload)
    await node.publisher.publish(qc_passed(upload))
    [event] = await archived_events(node, upload.data.file_id)

    a = event.data
    assert a.accession == a.drs_id == accession_for("FI", dataset_id, upload.data.sha256)
    assert (a.size, a.decrypted_sha256, a.decrypted_md5) == (len(data), upload.data.sha256, upload.data.md5)
    assert a.archive_key == f"sha256/{a.encrypted_sha256[:2]}/{a.encrypted_sha256}.c4gh"
    assert await decrypted_sha256(node, a.archive_key) == hashlib.sha256(data).hexdigest()
    assert a.index_key and await decrypted_sha256(node, a.index_key) == hashlib.sha256(index).hexdigest()
    assert event.causation_id == qc_passed(upload).id
    inbox = node.settings.s3_inbox_bucket
    # the worker removes the inbox copy just after file.archived is acknowledged: soon after, not before
    assert await gone(node, inbox, upload.data.object_key)
    assert await gone(node, inbox, upload.data.object_key + ".tbi")


async def gone(node: Node, bucket: str, key: str, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while await exists(node, bucket, key):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_a_redelivery_or_second_upload_re_emits_the_same_event_without_a_second_copy(node: Node,
                                                                                         pool: Any) -> None:
    data = b"##fileformat=VCFv4.3\n" + uuid.uuid4().bytes * 1000  # bytes no other file has
    upload = await put_in_inbox(node, new_dataset_id(), data)
    await node.publisher.publish(upload)
    await node.publisher.publish(qc_passed(upload))
    [first] = await archived_events(node, upload.data.file_id)

    again = await put_in_inbox(node, upload.data.dataset_id, data)  # the same file uploaded once more
    await node.publisher.publish(again)
    await node.publisher.publish(qc_passed(again))
    await node.publisher.publish(qc_passed(upload))  # and the first QC verdict delivered twice
    events = await archived_events(node, upload.data.file_id, count=3)

    assert len(events) == 3 and all(e == first for e in events)
    assert await pool.fetchval("SELECT count(*) FROM worker_archive.objects WHERE file_id = $1",
                               upload.data.file_id) == 1
    assert await gone(node, node.settings.s3_inbox_bucket, again.data.object_key)


async def test_the_same_bytes_in_another_dataset_reuse_the_archive_object_with_a_new_accession(node: Node) -> None:
    data = b"##fileformat=VCFv4.3\n" + uuid.uuid4().bytes * 1000
    first = await put_in_inbox(node, new_dataset_id(), data)
    second = await put_in_inbox(node, new_dataset_id(), data)
    for upload in (first, second):
        await node.publisher.publish(upload)
        await node.publisher.publish(qc_passed(upload))

    [a] = await archived_events(node, first.data.file_id)
    [b] = await archived_events(node, second.data.file_id)

    assert a.data.archive_key == b.data.archive_key and a.data.encrypted_sha256 == b.data.encrypted_sha256
    assert a.data.accession != b.data.accession
    assert await gone(node, node.settings.s3_inbox_bucket, second.data.object_key)


async def test_inbox_bytes_that_are_not_the_upload_go_to_the_dead_letter_topic_and_stay(node: Node) -> None:
    upload = await put_in_inbox(node, new_dataset_id(), b"tampered bytes", claimed=b"the uploaded bytes")
    await node.publisher.publish(upload)
    check = qc_passed(upload)
    await node.publisher.publish(check)

    deadline = time.monotonic() + 60
    while not (letters := [d for d in await dead_letters(node.settings) if decode(d["original"]).id == check.id]):
        assert time.monotonic() < deadline, "no dead letter"
        await asyncio.sleep(0.2)

    assert "is not the uploaded file" in str(letters[0])
    assert await archived_events(node, upload.data.file_id, timeout=0) == []
    assert await exists(node, node.settings.s3_inbox_bucket, upload.data.object_key)


async def test_an_upload_interrupted_before_verification_is_adopted_not_copied(node: Node, pool: Any) -> None:
    data = uuid.uuid4().bytes * 50_000
    upload = (await put_in_inbox(node, new_dataset_id(), data)).data
    archivist = Archivist(node.settings, ArchiveLedger(pool), node.s3, *load_archive_keys(node.settings))

    async def killed(obj: Any) -> None:
        raise Transient("worker killed between upload and verification")

    archivist.verify = killed  # type: ignore[method-assign]
    with pytest.raises(Transient):
        await archivist.archive_object(upload.file_id, "data", upload.bucket, upload.object_key,
                                       (upload.size, upload.sha256, upload.md5))
    state, pending = await archivist.ledger.object(upload.file_id, "data")  # type: ignore[misc]
    del archivist.verify

    adopted = await archivist.archive_object(upload.file_id, "data", upload.bucket, upload.object_key,
                                             (upload.size, upload.sha256, upload.md5))

    assert state == "pending" and await exists(node, pending.bucket, pending.key)
    assert adopted == pending
    assert (await archivist.ledger.object(upload.file_id, "data"))[0] == "verified"  # type: ignore[index]
