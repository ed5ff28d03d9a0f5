"""The archive worker's handlers, run by ``TestKafkaBroker``: uploads remembered, QC-passed files archived.

The archivist's encryption and upload (``Archivist.archive``) and its PostgreSQL ledger are fakes;
Crypt4GH itself is tested in ``test_archive.py`` and the whole path in the integration tests.
The inbox removal is the archivist's own, over a fake object store that keeps a journal, so the
order "published, then removed" is observed, not assumed.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any
from uuid import UUID

import pytest
from botocore.exceptions import ClientError
from faststream import Context

from genomebus.consumers import archive
from genomebus.consumers.archive import Archivist, Upload, accession_for, archive_key_for
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Worker
from genomebus.schemas.envelope import Envelope, decode, derived_id, encode, new_envelope
from genomebus.schemas.reception import FileArchived, FileQcPassed, FileUploaded
from tests.unit.test_worker import resources, running
from tests.unit.test_worker import settings as worker_settings

DATASET = "GDI-FI-DATASET-001"
SOURCE = "urn:genomebus:node:FI"
INBOX = "genomebus-inbox"
CONTENT = b"##fileformat=VCFv4.2\n"
SHA256 = hashlib.sha256(CONTENT).hexdigest()


def unavailable(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"},
                        "ResponseMetadata": {"HTTPStatusCode": 503}}, operation)


class FakeLedger:
    """``ArchiveLedger``'s handler-facing calls over dicts: latest upload wins, first archived record wins."""

    def __init__(self) -> None:
        self.uploads: dict[UUID, Upload] = {}
        self.records: dict[UUID, Envelope[FileArchived]] = {}

    async def remember_upload(self, upload: FileUploaded, event_id: UUID) -> None:
        self.uploads[upload.file_id] = Upload(upload.file_id, upload.dataset_id, upload.bucket, upload.object_key,
                                              upload.size, upload.sha256, upload.md5)

    async def upload(self, file_id: UUID) -> Upload | None:
        return self.uploads.get(file_id)

    async def archived(self, file_id: UUID) -> Envelope[FileArchived] | None:
        return self.records.get(file_id)

    async def record_archived(self, envelope: Envelope[FileArchived]) -> Envelope[FileArchived]:
        return self.records.setdefault(envelope.data.file_id, envelope)


class FakeInbox:
    """The object store as ``remove_inbox_copy`` sees it; every deletion goes to the shared journal."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.unavailable = 0  # this many deletions answer 503 first

    async def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto's names
        if self.unavailable:
            self.unavailable -= 1
            raise unavailable("DeleteObject")
        self.journal.append(f"deleted {Bucket}/{Key}")
        return {}


class FakeArchivist(Archivist):
    """The real archivist but for ``archive``, which records the call and answers without any I/O."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts: list[UUID] = []  # the QC verdicts it was asked to archive, one per attempt
        self.unavailable = 0  # this many attempts answer 503 first

    async def archive(self, cause: Envelope[FileQcPassed], upload: Upload) -> Envelope[FileArchived]:
        self.attempts.append(cause.id)
        if self.unavailable:
            self.unavailable -= 1
            raise unavailable("PutObject")
        qc = cause.data
        accession = accession_for(self.settings.node_id, qc.dataset_id, upload.sha256)
        encrypted_sha256 = hashlib.sha256(b"ciphertext of " + upload.sha256.encode()).hexdigest()
        data = FileArchived(file_id=qc.file_id, dataset_id=qc.dataset_id, accession=accession, drs_id=accession,
                            format=qc.format, archive_bucket=self.settings.s3_archive_bucket,
                            archive_key=archive_key_for(encrypted_sha256), size=upload.size,
                            decrypted_sha256=upload.sha256, decrypted_md5=upload.md5,
                            encrypted_size=upload.size + 124, encrypted_sha256=encrypted_sha256,
                            encrypted_md5="c" * 32)
        return await self.ledger.record_archived(new_envelope(data, source=self.settings.source, actor=archive.ACTOR,
                                                              cause=cause))


@pytest.fixture
def settings() -> Settings:
    return worker_settings(consumer_retry_max_attempts=4)  # a fresh topic prefix; retries after a millisecond


@pytest.fixture
def journal() -> list[str]:
    return []


@pytest.fixture
def inbox(journal: list[str]) -> FakeInbox:
    return FakeInbox(journal)


@pytest.fixture
def archivist(settings: Settings, inbox: FakeInbox) -> FakeArchivist:
    return FakeArchivist(settings, FakeLedger(), inbox, secret_key=b"", public_key=b"")  # type: ignore[arg-type]


def build(settings: Settings, archivist: FakeArchivist) -> Worker:
    return archive.build(settings, name=f"archive-{uuid.uuid4().hex[:6]}", resources=resources(archivist=archivist))


async def send(worker: Worker, journal: list[str], *events: Envelope[Any]) -> list[Envelope[Any]]:
    """Publish ``events`` to the reception topic; return what the worker published (also noted in the journal)."""
    topic = worker.settings.topic("reception")
    published: list[Envelope[Any]] = []

    @worker.broker.subscriber(topic, group_id="spy")
    async def spy(body: Any, message: Any = Context()) -> None:
        event = decode(message.body)
        if event.type in worker.produces:
            assert message.raw_message.key == event.subject.encode()
            journal.append(f"published {event.type}")
            published.append(event)

    async with running(worker) as broker:
        for event in events:
            await broker.publish(encode(event), topic, key=event.subject.encode())
    return published


def uploaded(dataset_id: str = DATASET) -> Envelope[FileUploaded]:
    data = FileUploaded(file_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{dataset_id}/{SHA256}"), dataset_id=dataset_id,
                        filename="calls.vcf.gz", bucket=INBOX, object_key=f"{dataset_id}/{SHA256}/calls.vcf.gz",
                        size=len(CONTENT), sha256=SHA256, md5=hashlib.md5(CONTENT).hexdigest(),
                        declared_format="VCF")
    return new_envelope(data, source=SOURCE, actor="node-system-1")


def qc_passed(upload: Envelope[FileUploaded], dataset_id: str | None = None) -> Envelope[FileQcPassed]:
    data = FileQcPassed(file_id=upload.data.file_id, dataset_id=dataset_id or upload.data.dataset_id, format="VCF",
                        metrics={"records": 1, "index_key": upload.data.object_key + ".tbi"})
    return new_envelope(data, source=SOURCE, actor="worker:qc", cause=upload)


def removals(upload: Envelope[FileUploaded]) -> list[str]:
    """What removing the inbox copy deletes: the object, the index QC named, the other index VCF may have."""
    key = f"{INBOX}/{upload.data.object_key}"
    return [f"deleted {key}", f"deleted {key}.tbi", f"deleted {key}.csi"]


async def test_an_upload_is_remembered_and_nothing_is_published(
        settings: Settings, archivist: FakeArchivist, journal: list[str]) -> None:
    upload = uploaded()
    worker = build(settings, archivist)

    assert await send(worker, journal, upload) == []

    assert archivist.ledger.uploads == {upload.data.file_id: Upload(
        upload.data.file_id, DATASET, INBOX, upload.data.object_key, len(CONTENT), SHA256, upload.data.md5)}
    assert archivist.attempts == [] and journal == []
    assert worker.processed == 1 and worker.letters == []  # type: ignore[attr-defined]


async def test_a_qc_passed_file_is_archived_published_and_only_then_removed_from_the_inbox(
        settings: Settings, archivist: FakeArchivist, journal: list[str]) -> None:
    upload = uploaded()
    qc = qc_passed(upload)
    worker = build(settings, archivist)

    [archived] = await send(worker, journal, upload, qc)

    assert archived.type == "file.archived" and archived.id == derived_id(qc.id, "file.archived")
    assert archived.causation_id == qc.id and archived.correlation_id == upload.correlation_id
    assert archived.actor == "worker:archive" and archived.subject == str(upload.data.file_id)
    assert archived.data.accession == accession_for("FI", DATASET, SHA256) == archived.data.drs_id
    assert archived == archivist.ledger.records[upload.data.file_id]
    assert archivist.attempts == [qc.id]
    assert journal == ["published file.archived", *removals(upload)]
    assert worker.processed == 2 and worker.letters == []  # type: ignore[attr-defined]


async def test_an_already_archived_file_is_re_emitted_unchanged_and_not_archived_again(
        settings: Settings, archivist: FakeArchivist, journal: list[str]) -> None:
    upload = uploaded()
    qc = qc_passed(upload)
    worker = build(settings, archivist)

    first, again = await send(worker, journal, upload, qc, qc)  # a redelivery of the same QC verdict

    assert again == first  # the stored envelope: same id, same time (a second encryption would differ)
    assert archivist.attempts == [qc.id]
    # Removing the inbox copy is repeated, after the publish again: deleting a missing key is a no-op.
    assert journal == ["published file.archived", *removals(upload)] * 2


@pytest.mark.parametrize(("events", "error"), [
    (lambda upload: [qc_passed(upload)], "no file.uploaded seen"),
    (lambda upload: [upload, qc_passed(upload, dataset_id="GDI-FI-DATASET-002")], "was uploaded to " + DATASET),
], ids=["unknown upload", "dataset differs"])
async def test_a_qc_verdict_that_matches_no_upload_is_dead_lettered_and_nothing_is_touched(
        settings: Settings, archivist: FakeArchivist, journal: list[str], events: Any, error: str) -> None:
    upload = uploaded()
    worker = build(settings, archivist)

    assert await send(worker, journal, *events(upload)) == []

    [letter] = worker.letters  # type: ignore[attr-defined]
    assert letter["reason"] == "handler_failed" and letter["consumer"] == worker.name
    assert "ArchiveRefused" in letter["error"] and error in letter["error"]
    assert decode(base64.b64decode(letter["original_base64"])).type == "file.qc_passed"
    assert archivist.attempts == [] and archivist.ledger.records == {}
    assert journal == []  # the inbox copy stays for an operator


async def test_an_object_store_503_while_archiving_is_retried(
        settings: Settings, archivist: FakeArchivist, journal: list[str]) -> None:
    upload = uploaded()
    qc = qc_passed(upload)
    archivist.unavailable = 2
    worker = build(settings, archivist)

    [archived] = await send(worker, journal, upload, qc)

    assert archivist.attempts == [qc.id] * 3
    assert archived.id == derived_id(qc.id, "file.archived")
    assert journal == ["published file.archived", *removals(upload)]
    assert worker.letters == []  # type: ignore[attr-defined]


async def test_an_object_store_that_stays_unavailable_parks_the_verdict_as_retries_exhausted(
        settings: Settings, archivist: FakeArchivist, journal: list[str]) -> None:
    upload = uploaded()
    archivist.unavailable = 10**6
    worker = build(settings, archivist)

    assert await send(worker, journal, upload, qc_passed(upload)) == []

    [letter] = worker.letters  # type: ignore[attr-defined]
    assert letter["reason"] == "retries_exhausted" and "object store: ServiceUnavailable" in letter["error"]
    assert len(archivist.attempts) == settings.consumer_retry_max_attempts
    assert journal == []


async def test_a_503_while_removing_the_inbox_copy_publishes_the_same_event_again_then_removes_it(
        settings: Settings, archivist: FakeArchivist, inbox: FakeInbox, journal: list[str]) -> None:
    upload = uploaded()
    qc = qc_passed(upload)
    inbox.unavailable = 1
    worker = build(settings, archivist)

    first, again = await send(worker, journal, upload, qc)

    assert again == first and archivist.attempts == [qc.id]  # archived once, the stored event re-emitted
    assert journal == ["published file.archived", "published file.archived", *removals(upload)]
    assert worker.letters == []  # type: ignore[attr-defined]
