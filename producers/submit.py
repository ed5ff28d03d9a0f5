"""Submitting files: stream a local file into the inbox bucket, then ask for it to join its dataset.

``submit_file`` is what a pipeline calls; ``genomebus submit`` is a thin shell around it.

The file is read twice. The first pass learns its sha256, which names the file
(``file_id_for``) and so fixes its object key ``<dataset_id>/<file_id>/<filename>``
before the first byte is sent. The second pass streams it to the inbox, one part
in memory at a time (a single ``put_object`` up to one part, multipart above),
computing sha256 and md5 on the way; the two sha256 must agree, so a file that
changes while it is submitted is refused rather than archived under a wrong name.

Before the first byte, the gateway is asked whether the dataset takes files
(registered, not released or withdrawn); after the hashing pass, whether the same
bytes are already archived in it (then nothing is uploaded: ``skipped``).

Nothing is announced that is not in the inbox, whole: a failed or interrupted
upload (exception, ``KeyboardInterrupt``, cancellation, a ``progress`` callback
that raises) aborts the multipart upload or deletes the object it put, and the
command ``file.submit_requested`` is published only after ``head_object`` shows
the object with the file's size. The reception decider answers it with
``file.uploaded`` (which the QC worker consumes) or a rejection with reasons,
and ``submit_file`` returns that answer. If publishing itself fails the object
stays: submitting the same content again writes the same key and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, get_args
from uuid import UUID

import httpx
from botocore.exceptions import ClientError

from genomebus.infra import s3 as object_store
from genomebus.infra.kafka import Publisher
from genomebus.infra.settings import Settings
from genomebus.producers.commands import (
    CommandOutcome,
    GatewayUnavailable,
    gateway_client,
    gateway_get,
    send_command,
)
from genomebus.schemas.base import PID_PATTERN
from genomebus.schemas.reception import FileFormat, FileSubmitRequested

log = logging.getLogger(__name__)

FILE_ID_NAMESPACE = UUID("ce9c6376-658b-5daa-b2f5-a34257e38132")
"""uuid5(NAMESPACE_URL, "urn:genomebus:file"), written out: changing it would rename every file."""

PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000  # the S3 limit; bigger files get bigger parts
ALIAS_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
FORMATS: tuple[str, ...] = get_args(FileFormat)

# Longest suffix first, so "x.vcf.gz" is a VCF and not an unknown ".gz".
_SUFFIX_FORMATS: tuple[tuple[str, FileFormat], ...] = (
    (".fastq.gz", "FASTQ"), (".vcf.gz", "VCF"), (".fq.gz", "FASTQ"), (".fastq", "FASTQ"),
    (".cram", "CRAM"), (".bam", "BAM"), (".vcf", "VCF"), (".bcf", "BCF"), (".fq", "FASTQ"),
)

Progress = Callable[[int, int], None]
"""Called with (bytes uploaded so far, total bytes) after each part."""


class InvalidSubmission(ValueError):
    """Input refused before anything was uploaded; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class UploadFailed(RuntimeError):
    """The upload did not end as a verified object in the inbox; nothing was published."""


class AnnounceFailed(RuntimeError):
    """The object is in the inbox but its command was not confirmed; submitting again is safe."""


class DatasetClosed(ValueError):
    """The dataset takes no files (unknown, released or withdrawn); ``reason`` is the code the decider uses."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Submission:
    """A file checked and ready to send: everything known before a byte leaves."""

    dataset_id: str
    path: Path
    size: int
    declared_format: FileFormat
    alias: str | None

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class SubmittedFile:
    """What was asked for, what the decider answered, and how the upload went.

    ``outcome`` is None when nothing was sent because the same bytes are already archived in the
    dataset (``archived_as`` names the accession).
    """

    command: FileSubmitRequested
    outcome: CommandOutcome | None
    parts: int
    seconds: float
    archived_as: str | None = None

    @property
    def file_id(self) -> UUID:
        return self.command.file_id

    @property
    def skipped(self) -> bool:
        return self.outcome is None

    @property
    def mb_per_s(self) -> float:
        return self.command.size / 1e6 / self.seconds if self.seconds > 0 and not self.skipped else 0.0


def file_id_for(dataset_id: str, sha256: str) -> UUID:
    """The file's id: the same content submitted to the same dataset again is the same file."""
    return uuid.uuid5(FILE_ID_NAMESPACE, f"{dataset_id}:{sha256}")


def object_key(dataset_id: str, file_id: UUID, filename: str) -> str:
    return f"{dataset_id}/{file_id}/{filename}"


def infer_format(filename: str) -> FileFormat:
    """The format a file name declares, or ``InvalidSubmission`` naming the suffixes understood."""
    name = filename.lower()
    for suffix, fmt in _SUFFIX_FORMATS:
        if name.endswith(suffix):
            return fmt
    known = ", ".join(sorted(s for s, _ in _SUFFIX_FORMATS))
    raise InvalidSubmission("unknown_format", f"cannot tell the format of {filename!r} from its name "
                                              f"(known: {known}); pass the format explicitly")


def part_size_for(size: int) -> int:
    """8 MiB, or the smallest whole MiB that keeps the upload within the S3 part limit."""
    mib = 1024 * 1024
    return max(PART_SIZE, -(-size // MAX_PARTS // mib) * mib)


def check_submission(dataset_id: str, path: Path | str, *, declared_format: str | None = None,
                     alias: str | None = None) -> Submission:
    """Everything that can be refused without the network, refused with a clear ``InvalidSubmission``."""
    if not re.match(PID_PATTERN, dataset_id):
        raise InvalidSubmission("invalid_dataset_id", f"{dataset_id!r} is not a 1+MG dataset id "
                                                      "(GDI-FI-DATASET-001 is the form)")
    if alias is not None and not re.match(ALIAS_PATTERN, alias):
        raise InvalidSubmission("invalid_alias", f"alias {alias!r} must be 1-200 of A-Z a-z 0-9 . _ -")
    path = Path(path)
    if not path.exists():
        raise InvalidSubmission("missing_file", f"{path}: no such file")
    if not path.is_file():
        raise InvalidSubmission("not_a_file", f"{path}: not a regular file")
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise InvalidSubmission("unreadable_file", f"{path}: cannot read: {exc.strerror or exc}") from exc
    if declared_format is None:
        fmt = infer_format(path.name)
    elif declared_format.upper() in FORMATS:
        fmt = declared_format.upper()  # type: ignore[assignment]
    else:
        raise InvalidSubmission("unknown_format", f"unknown format {declared_format!r}; "
                                                  f"choose from {', '.join(FORMATS)}")
    return Submission(dataset_id, path, path.stat().st_size, fmt, alias)


async def submit_file(settings: Settings, dataset_id: str, path: Path | str, *, declared_format: str | None = None,
                      alias: str | None = None, actor: str, publisher: Publisher | None = None,
                      progress: Progress | None = None, s3: Any | None = None,
                      http: httpx.AsyncClient | None = None) -> SubmittedFile:
    """Upload one file to the inbox and publish ``file.uploaded``; see the module docstring for the guarantees.

    ``publisher`` and ``s3`` (an open ``infra.s3.client``) may be shared across
    files; when absent they are opened here, the publisher first, so that an
    unreachable broker fails before the upload rather than after it. ``http`` is a client of
    the node's gateway (default: one on ``settings.gateway_url``).
    """
    submission = check_submission(dataset_id, path, declared_format=declared_format, alias=alias)
    async with contextlib.AsyncExitStack() as resources:
        if http is None:
            http = await resources.enter_async_context(gateway_client(settings))
        await check_dataset_open(settings, dataset_id, http=http)
        if publisher is None:
            publisher = await resources.enter_async_context(Publisher(settings))
        if s3 is None:
            s3 = await resources.enter_async_context(object_store.client(settings))
        started = time.monotonic()
        sha256 = await asyncio.to_thread(_sha256_of, submission.path, submission.size)
        file_id = file_id_for(dataset_id, sha256)
        bucket, key = settings.s3_inbox_bucket, object_key(dataset_id, file_id, submission.filename)
        archived_as = await archived_accession(settings, file_id, http=http)
        if archived_as is None:
            md5, parts = await _upload(s3, bucket, key, submission, sha256, progress)
        else:
            md5, parts = "0" * 32, 0
        command = FileSubmitRequested(file_id=file_id, dataset_id=dataset_id, filename=submission.filename,
                                      bucket=bucket, object_key=key, size=submission.size, sha256=sha256, md5=md5,
                                      declared_format=submission.declared_format, alias=alias)
        if archived_as is not None:
            return SubmittedFile(command, None, 0, time.monotonic() - started, archived_as)
        seconds = time.monotonic() - started
        try:
            outcome = await send_command(settings, command, actor=actor, publisher=publisher, http=http)
        except Exception as exc:
            raise AnnounceFailed(f"s3://{bucket}/{key} is uploaded, but its submission was not confirmed ({exc}); "
                                 f"submitting the same file again is safe") from exc
    return SubmittedFile(command, outcome, parts, seconds)


async def check_dataset_open(settings: Settings, dataset_id: str, *, http: httpx.AsyncClient | None = None) -> None:
    """Ask the gateway whether ``dataset_id`` takes files; ``DatasetClosed`` saying why not."""
    response = await _gateway_get(settings, f"/datasets/{dataset_id}", http)
    if response.status_code == 404:
        raise DatasetClosed("unknown_dataset", f"{dataset_id} is not registered on this node; register it first "
                                               "(`genomebus dataset register`)")
    if response.status_code == 410:
        raise DatasetClosed("dataset_withdrawn", f"{dataset_id} is withdrawn: it takes no more files")
    if response.status_code != 200:
        raise GatewayUnavailable(f"the gateway answered {response.status_code} for dataset {dataset_id}")
    if (state := response.json().get("state")) != "registered":
        raise DatasetClosed(f"dataset_{state}", f"{dataset_id} is {state}: it takes no more files")


async def archived_accession(settings: Settings, file_id: UUID, *,
                             http: httpx.AsyncClient | None = None) -> str | None:
    """The accession if these very bytes are already archived in this dataset (the file id says both)."""
    response = await _gateway_get(settings, f"/files/{file_id}", http)
    if response.status_code == 200 and response.json().get("state") == "archived":
        return response.json().get("accession")
    return None


async def _gateway_get(settings: Settings, path: str, http: httpx.AsyncClient | None) -> httpx.Response:
    if http is not None:
        return await gateway_get(http, path)
    async with gateway_client(settings) as client:
        return await gateway_get(client, path)


# -- the upload ---------------------------------------------------------------------------------


class _Digests:
    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()  # noqa: S324 - a checksum the archive records, not security

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)


def _read_exactly(stream: BinaryIO, n: int, digests: _Digests | None = None) -> bytes:
    """``n`` bytes, hashed; a file shorter than it was is an ``UploadFailed``."""
    data = stream.read(n)
    if len(data) != n:
        raise UploadFailed(f"{getattr(stream, 'name', 'file')} shrank while being submitted")
    if digests is not None:
        digests.update(data)
    return data


def _check_at_end(stream: BinaryIO) -> None:
    if stream.read(1):
        raise UploadFailed(f"{getattr(stream, 'name', 'file')} grew while being submitted")


def _sha256_of(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for offset in range(0, size, PART_SIZE):
            digest.update(_read_exactly(stream, min(PART_SIZE, size - offset)))
        _check_at_end(stream)
    return digest.hexdigest()


async def _upload(s3: Any, bucket: str, key: str, submission: Submission, sha256: str,
                  progress: Progress | None) -> tuple[str, int]:
    """Stream the file to ``bucket/key``; return its md5 and part count, or leave nothing behind and raise.

    Only content whose sha256 matches the key is ever written (both paths check
    the digest before the object can appear), so an object that was already
    there from an earlier submission is the same bytes and is left alone.
    """
    size = submission.size
    part_size = part_size_for(size)
    digests = _Digests()
    metadata = {"sha256": sha256, "dataset-id": submission.dataset_id}
    existed = await _exists(s3, bucket, key)
    report = progress or (lambda done, total: None)
    report(0, size)
    try:
        with submission.path.open("rb") as stream:
            if size <= part_size:
                body = await asyncio.to_thread(_read_exactly, stream, size, digests)
                _check_at_end(stream)
                _check_digest(digests, sha256, submission)
                await s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata,
                                    ContentType="application/octet-stream")
                parts = 1
                report(size, size)
            else:
                parts = await _put_parts(s3, bucket, key, stream, submission, part_size, digests, sha256,
                                         metadata, report)
        head = await s3.head_object(Bucket=bucket, Key=key)
        if head["ContentLength"] != size:
            existed = False  # not the bytes we meant, whoever wrote them
            raise UploadFailed(f"s3://{bucket}/{key} has {head['ContentLength']} bytes, expected {size}")
    except BaseException:
        if not existed:
            await _delete_quietly(s3, bucket, key)
        raise
    return digests.md5.hexdigest(), parts


async def _put_parts(s3: Any, bucket: str, key: str, stream: BinaryIO, submission: Submission, part_size: int,
                     digests: _Digests, sha256: str, metadata: dict[str, str], report: Progress) -> int:
    size = submission.size
    upload_id = (await s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata,
                                                  ContentType="application/octet-stream"))["UploadId"]
    try:
        parts = []
        for number, offset in enumerate(range(0, size, part_size), start=1):
            data = await asyncio.to_thread(_read_exactly, stream, min(part_size, size - offset), digests)
            answer = await s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
            del data  # one part in memory: let it go before reading the next
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            report(min(offset + part_size, size), size)
        _check_at_end(stream)
        _check_digest(digests, sha256, submission)
        await s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                           MultipartUpload={"Parts": parts})
    except BaseException:
        await _abort_quietly(s3, bucket, key, upload_id)
        raise
    return len(parts)


def _check_digest(digests: _Digests, sha256: str, submission: Submission) -> None:
    if digests.sha256.hexdigest() != sha256:
        raise UploadFailed(f"{submission.path} changed while being submitted")


async def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        await s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


async def _abort_quietly(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort during cleanup: a failure here is logged, the original error is what the caller sees."""
    try:
        await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001
        log.warning("could not abort multipart upload %s of s3://%s/%s", upload_id, bucket, key, exc_info=True)


async def _delete_quietly(s3: Any, bucket: str, key: str) -> None:
    try:
        await s3.delete_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001
        log.warning("could not delete s3://%s/%s after a failed upload", bucket, key, exc_info=True)
