"""Submitting files: formats, file ids, and an upload that announces only what is whole in the inbox.

The object store is an in-memory fake that records every call, so the
multipart protocol (parts, complete, abort) and the cleanup after failures are
visible; the publisher is a fake that records what would have been published.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from genomebus.cli import app
from genomebus.infra.kafka import Published
from genomebus.infra.settings import Settings
from genomebus.producers.submit import (
    FILE_ID_NAMESPACE,
    MAX_PARTS,
    PART_SIZE,
    AnnounceFailed,
    DatasetClosed,
    InvalidSubmission,
    UploadFailed,
    check_submission,
    file_id_for,
    infer_format,
    object_key,
    part_size_for,
    submit_file,
)
from genomebus.schemas.envelope import Envelope

DATASET = "GDI-FI-DATASET-001"
MiB = 1024 * 1024


class FakeS3:
    """Just enough of the S3 API for ``submit_file``, in memory, recording each call by name."""

    def __init__(self, *, fail_on_part: int | None = None, block_on_part: int | None = None) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.calls: list[str] = []
        self.fail_on_part = fail_on_part
        self.block_on_part = block_on_part
        self.part_started = asyncio.Event()
        self.fail_put = False
        self.short_by = 0  # bytes the store "loses", to test the size check

    async def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - the S3 API's names
        self.calls.append("head_object")
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Bucket, Key])}

    async def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.calls.append("put_object")
        self.objects[Bucket, Key] = Body[: len(Body) - self.short_by]
        if self.fail_put:  # the bytes landed, but the answer never came back
            raise ConnectionResetError("connection reset by peer")
        return {"ETag": '"etag"'}

    async def create_multipart_upload(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.calls.append("create_multipart_upload")
        upload_id = str(uuid.uuid4())
        self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    async def upload_part(self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int,  # noqa: N803
                          Body: bytes) -> dict[str, Any]:
        self.calls.append("upload_part")
        if PartNumber == self.block_on_part:
            self.part_started.set()
            await asyncio.Event().wait()  # until cancelled
        if PartNumber == self.fail_on_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "disk on fire"}}, "UploadPart")
        self.uploads[UploadId][PartNumber] = Body
        return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"'}  # noqa: S324

    async def complete_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str,  # noqa: N803
                                        MultipartUpload: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("complete_multipart_upload")
        parts = self.uploads.pop(UploadId)
        self.objects[Bucket, Key] = b"".join(parts[p["PartNumber"]] for p in MultipartUpload["Parts"])
        return {}

    async def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:  # noqa: N803
        self.calls.append("abort_multipart_upload")
        self.uploads.pop(UploadId, None)
        return {}

    async def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        self.calls.append("delete_object")
        self.objects.pop((Bucket, Key), None)
        return {}


class FakePublisher:
    def __init__(self, *, fail: bool = False) -> None:
        self.published: list[Envelope[Any]] = []
        self.fail = fail

    async def publish(self, envelope: Envelope[Any]) -> Published:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.published.append(envelope)
        return Published("genomebus.reception", 0, len(self.published) - 1, str(envelope.id))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "node", s3_inbox_bucket="inbox")


def a_file(directory: Path, name: str, size: int) -> Path:
    path = directory / name
    path.write_bytes(os.urandom(size))
    return path


def fake_gateway(dataset_state: str = "registered", *, archived: str | None = None) -> httpx.AsyncClient:
    """The gateway's answers: the dataset's state, no file (or one archived), every command accepted."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/datasets/"):
            if dataset_state == "unknown":
                return httpx.Response(404, json={"status": 404})
            if dataset_state == "withdrawn":
                return httpx.Response(410, json={"status": 410})
            return httpx.Response(200, json={"id": DATASET, "state": dataset_state})
        if path.startswith("/files/"):
            if archived:
                return httpx.Response(200, json={"state": "archived", "accession": archived})
            return httpx.Response(404, json={"status": 404})
        if path.startswith("/commands/"):
            return httpx.Response(200, json={"id": path.rsplit("/", 1)[1], "type": "file.submit_requested",
                                              "status": "accepted", "outcome_type": "file.uploaded",
                                              "reasons": [], "state": None})
        return httpx.Response(404)

    return httpx.AsyncClient(base_url="http://gateway.test", transport=httpx.MockTransport(answer))


async def submit(settings: Settings, path: Path, s3: FakeS3, publisher: FakePublisher, *,
                 gateway: httpx.AsyncClient | None = None, **options: Any) -> Any:
    return await submit_file(settings, DATASET, path, actor="pipeline-1", publisher=publisher,  # type: ignore[arg-type]
                             s3=s3, http=gateway or fake_gateway(), **options)


# -- formats, ids, checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("NA18537.vcf.gz", "VCF"), ("calls.vcf", "VCF"), ("calls.bcf", "BCF"), ("reads.bam", "BAM"),
        ("reads.cram", "CRAM"), ("R1.fastq", "FASTQ"), ("R1.fq", "FASTQ"), ("R1.fastq.gz", "FASTQ"),
        ("R1.fq.gz", "FASTQ"), ("SAMPLE.VCF.GZ", "VCF"), ("run.1.Reads.BAM", "BAM"),
    ],
)
def test_the_format_is_inferred_from_the_file_name(name, fmt):
    assert infer_format(name) == fmt


@pytest.mark.parametrize("name", ["notes.txt", "calls.gz", "calls.vcf.bgz", "reads.bam.bai", "vcf", "README"])
def test_an_unknown_suffix_is_a_clear_error(name):
    with pytest.raises(InvalidSubmission) as caught:
        infer_format(name)
    assert caught.value.reason == "unknown_format"
    assert name in caught.value.message
    assert ".vcf.gz" in caught.value.message


def test_the_file_id_is_a_uuid5_of_dataset_and_content():
    sha = hashlib.sha256(b"ACGT").hexdigest()
    assert FILE_ID_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:genomebus:file")
    assert file_id_for(DATASET, sha) == file_id_for(DATASET, sha) == uuid.uuid5(FILE_ID_NAMESPACE, f"{DATASET}:{sha}")
    assert file_id_for(DATASET, sha).version == 5
    assert file_id_for("GDI-FI-DATASET-002", sha) != file_id_for(DATASET, sha)
    assert file_id_for(DATASET, hashlib.sha256(b"ACGA").hexdigest()) != file_id_for(DATASET, sha)


def test_the_file_id_never_changes():
    """Archived files are named by it: a new value would make the same content a different file."""
    assert str(file_id_for(DATASET, "0" * 64)) == "908eb0ee-35fe-5bc2-aab9-b217cfe2817b"


def test_parts_stay_within_the_s3_limit():
    assert part_size_for(0) == part_size_for(PART_SIZE * MAX_PARTS) == PART_SIZE
    huge = 300 * 1024**3  # a deep WGS BAM
    assert part_size_for(huge) > PART_SIZE
    assert part_size_for(huge) % MiB == 0
    assert -(-huge // part_size_for(huge)) <= MAX_PARTS


@pytest.mark.parametrize(
    ("dataset_id", "reason"),
    [("FI-DATASET-1", "invalid_dataset_id"), ("GDI-fi-DATASET-1", "invalid_dataset_id"),
     ("GDI-FI-DATASET-001/../x", "invalid_dataset_id"), ("", "invalid_dataset_id")],
)
def test_a_bad_dataset_id_is_refused_before_anything_else(tmp_path, dataset_id, reason):
    with pytest.raises(InvalidSubmission) as caught:
        check_submission(dataset_id, tmp_path / "missing.vcf.gz")
    assert caught.value.reason == reason
    assert "1+MG dataset id" in caught.value.message


@pytest.mark.parametrize("alias", ["", "has space", "a/b", "x" * 201, "ä"])
def test_a_bad_alias_is_refused(tmp_path, alias):
    path = a_file(tmp_path, "a.vcf.gz", 10)
    with pytest.raises(InvalidSubmission) as caught:
        check_submission(DATASET, path, alias=alias)
    assert caught.value.reason == "invalid_alias"


def test_missing_directory_and_unreadable_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(InvalidSubmission, match="no such file") as missing:
        check_submission(DATASET, tmp_path / "nope.bam")
    assert missing.value.reason == "missing_file"
    (tmp_path / "dir.bam").mkdir()
    with pytest.raises(InvalidSubmission, match="not a regular file"):
        check_submission(DATASET, tmp_path / "dir.bam")

    locked = a_file(tmp_path, "locked.bam", 10)
    real_open = Path.open

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InvalidSubmission, match="cannot read: Permission denied") as unreadable:
        check_submission(DATASET, locked)
    assert unreadable.value.reason == "unreadable_file"


def test_an_explicit_format_wins_and_an_unknown_one_is_refused(tmp_path):
    path = a_file(tmp_path, "reads.dat", 10)
    assert check_submission(DATASET, path, declared_format="bam").declared_format == "BAM"
    with pytest.raises(InvalidSubmission, match="choose from BAM, CRAM, VCF, BCF, FASTQ"):
        check_submission(DATASET, path, declared_format="SAM")
    with pytest.raises(InvalidSubmission, match="reads.dat"):
        check_submission(DATASET, path)


# -- the upload ---------------------------------------------------------------------------------


async def test_a_small_file_is_one_put_then_one_event(settings, tmp_path):
    path = a_file(tmp_path, "NA00001.vcf.gz", 100_000)
    content = path.read_bytes()
    s3, publisher, seen = FakeS3(), FakePublisher(), []

    submitted = await submit(settings, path, s3, publisher, alias="NA00001-chr21",
                             progress=lambda done, total: seen.append((done, total)))

    sha256 = hashlib.sha256(content).hexdigest()
    file_id = file_id_for(DATASET, sha256)
    key = f"{DATASET}/{file_id}/NA00001.vcf.gz"
    assert s3.calls.count("put_object") == 1
    assert "create_multipart_upload" not in s3.calls
    assert s3.objects["inbox", key] == content
    assert seen[0] == (0, len(content)) and seen[-1] == (len(content), len(content))
    [envelope] = publisher.published
    assert envelope.type == "file.submit_requested"  # a command: the reception decider publishes file.uploaded
    assert envelope.subject == DATASET  # keyed by the dataset, so its commands are decided in order
    assert envelope.actor == "pipeline-1"
    event = envelope.data
    assert event == submitted.command
    assert submitted.outcome.accepted and submitted.outcome.outcome_type == "file.uploaded"
    assert (event.file_id, event.bucket, event.object_key, event.size) == (file_id, "inbox", key, len(content))
    assert event.sha256 == sha256
    assert event.md5 == hashlib.md5(content).hexdigest()  # noqa: S324
    assert (event.declared_format, event.alias, event.filename) == ("VCF", "NA00001-chr21", "NA00001.vcf.gz")
    assert submitted.parts == 1
    assert object_key(DATASET, file_id, "NA00001.vcf.gz") == key


async def test_a_file_larger_than_a_part_goes_multipart(settings, tmp_path):
    path = a_file(tmp_path, "reads.bam", 2 * PART_SIZE + 12345)
    content = path.read_bytes()
    s3, publisher, seen = FakeS3(), FakePublisher(), []

    submitted = await submit(settings, path, s3, publisher, progress=lambda done, total: seen.append(done))

    assert s3.calls.count("upload_part") == submitted.parts == 3
    assert s3.calls.count("complete_multipart_upload") == 1
    assert "put_object" not in s3.calls and "abort_multipart_upload" not in s3.calls
    assert s3.objects["inbox", submitted.command.object_key] == content
    assert seen == [0, PART_SIZE, 2 * PART_SIZE, len(content)]
    assert submitted.command.sha256 == hashlib.sha256(content).hexdigest()
    assert submitted.command.md5 == hashlib.md5(content).hexdigest()  # noqa: S324
    assert len(publisher.published) == 1


async def test_a_part_that_fails_aborts_the_upload_and_publishes_nothing(settings, tmp_path):
    path = a_file(tmp_path, "reads.cram", 3 * PART_SIZE)
    s3, publisher = FakeS3(fail_on_part=2), FakePublisher()

    with pytest.raises(ClientError, match="disk on fire"):
        await submit(settings, path, s3, publisher)

    assert s3.calls.count("upload_part") == 2
    assert s3.calls.count("abort_multipart_upload") == 1
    assert "complete_multipart_upload" not in s3.calls
    assert s3.uploads == {} and s3.objects == {}
    assert publisher.published == []


async def test_ctrl_c_during_the_upload_aborts_it_and_publishes_nothing(settings, tmp_path):
    path = a_file(tmp_path, "R1.fastq.gz", 3 * PART_SIZE)
    s3, publisher = FakeS3(), FakePublisher()

    def interrupt(done: int, total: int) -> None:
        if done >= PART_SIZE:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await submit(settings, path, s3, publisher, progress=interrupt)

    assert s3.calls.count("abort_multipart_upload") == 1
    assert s3.uploads == {} and s3.objects == {}
    assert publisher.published == []


async def test_a_cancelled_submission_aborts_the_upload_and_publishes_nothing(settings, tmp_path):
    path = a_file(tmp_path, "R2.fq.gz", 3 * PART_SIZE)
    s3, publisher = FakeS3(block_on_part=2), FakePublisher()

    task = asyncio.create_task(submit(settings, path, s3, publisher))
    await asyncio.wait_for(s3.part_started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert s3.calls.count("abort_multipart_upload") == 1
    assert s3.uploads == {} and s3.objects == {}
    assert publisher.published == []


async def test_a_put_that_fails_after_landing_leaves_no_object(settings, tmp_path):
    path = a_file(tmp_path, "small.bcf", 1000)
    s3, publisher = FakeS3(), FakePublisher()
    s3.fail_put = True

    with pytest.raises(ConnectionResetError):
        await submit(settings, path, s3, publisher)

    assert "delete_object" in s3.calls
    assert s3.objects == {}
    assert publisher.published == []


async def test_a_failed_resubmission_keeps_the_copy_already_in_the_inbox(settings, tmp_path):
    """Same content, same key: the earlier, announced copy must survive a failed second attempt."""
    path = a_file(tmp_path, "small.bcf", 1000)
    s3, publisher = FakeS3(), FakePublisher()
    first = await submit(settings, path, s3, publisher)
    s3.fail_put = True

    with pytest.raises(ConnectionResetError):
        await submit(settings, path, s3, publisher)

    assert s3.objects["inbox", first.command.object_key] == path.read_bytes()
    assert len(publisher.published) == 1


async def test_an_object_of_the_wrong_size_is_removed_and_not_announced(settings, tmp_path):
    path = a_file(tmp_path, "small.vcf", 1000)
    s3, publisher = FakeS3(), FakePublisher()
    s3.short_by = 1

    with pytest.raises(UploadFailed, match="has 999 bytes, expected 1000"):
        await submit(settings, path, s3, publisher)

    assert s3.objects == {}
    assert publisher.published == []


async def test_a_file_that_changes_while_submitted_is_refused(settings, tmp_path):
    path = a_file(tmp_path, "moving.vcf", 1000)
    s3, publisher = FakeS3(), FakePublisher()

    def rewrite(done: int, total: int) -> None:  # after the first pass named the file, before the second
        if done == 0:
            path.write_bytes(os.urandom(1000))

    with pytest.raises(UploadFailed, match="changed while being submitted"):
        await submit(settings, path, s3, publisher, progress=rewrite)

    assert "put_object" not in s3.calls
    assert s3.objects == {} and publisher.published == []


async def test_when_publishing_fails_the_object_stays_for_a_safe_retry(settings, tmp_path):
    path = a_file(tmp_path, "small.vcf", 1000)
    s3 = FakeS3()

    with pytest.raises(AnnounceFailed, match="submitting the same file again is safe"):
        await submit(settings, path, s3, FakePublisher(fail=True))
    again = await submit(settings, path, s3, publisher := FakePublisher())

    assert list(s3.objects) == [("inbox", again.command.object_key)]
    assert [e.data.file_id for e in publisher.published] == [again.file_id]


# -- the command: refusals happen before any connection ------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("GENOMEBUS_DATA_DIR", str(tmp_path / "no-node"))  # no stack: a refusal must not need one
    return CliRunner()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["FI-DATASET-1", "{vcf}"], "is not a 1+MG dataset id"),
        ([DATASET, "{missing}"], "no such file"),
        ([DATASET, "{vcf}", "{missing}"], "no such file"),
        ([DATASET, "{txt}"], "cannot tell the format of 'notes.txt'"),
        ([DATASET, "{vcf}", "--format", "SAM"], "unknown format 'SAM'"),
        ([DATASET, "{vcf}", "{vcf}", "--alias", "one"], "--alias names one file, but 2 files were given"),
        ([DATASET, "{vcf}", "--alias", "two words"], "alias 'two words'"),
    ],
)
def test_the_submit_command_refuses_bad_input_with_exit_2(runner, tmp_path, args, complaint):
    names = {"vcf": a_file(tmp_path, "a.vcf.gz", 10), "txt": a_file(tmp_path, "notes.txt", 10),
             "missing": tmp_path / "missing.bam"}
    result = runner.invoke(app, ["submit", *(a.format(**names) for a in args)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr
    assert complaint in " ".join(result.stderr.split())


async def test_a_dataset_that_takes_no_files_is_refused_before_a_byte_is_read(settings, tmp_path):
    path = a_file(tmp_path, "NA00001.vcf.gz", 1000)
    for state, reason in (("unknown", "unknown_dataset"), ("withdrawn", "dataset_withdrawn"),
                          ("released", "dataset_released")):
        s3, publisher = FakeS3(), FakePublisher()
        with pytest.raises(DatasetClosed) as refused:
            await submit(settings, path, s3, publisher, gateway=fake_gateway(state))
        assert refused.value.reason == reason
        assert s3.calls == [] and publisher.published == []


async def test_the_same_bytes_already_archived_are_skipped(settings, tmp_path):
    path = a_file(tmp_path, "NA00001.vcf.gz", 1000)
    s3, publisher = FakeS3(), FakePublisher()
    submitted = await submit(settings, path, s3, publisher, gateway=fake_gateway(archived="GDI-FI-FILE-00000007"))
    assert submitted.skipped and submitted.archived_as == "GDI-FI-FILE-00000007"
    assert s3.objects == {} and publisher.published == []
