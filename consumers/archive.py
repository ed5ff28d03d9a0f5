"""Archive: encrypts QC-passed files at rest with Crypt4GH, verifies them and gives them an accession.

- in: ``genomebus.reception`` (consumer group ``genomebus-archive``) — ``file.uploaded``
  (``on_uploaded``: remembered, where the inbox bytes are and their checksums; ``file.qc_passed``
  does not carry them) and ``file.qc_passed`` (``on_qc_passed``: archive it)
- out: ``file.archived`` on ``genomebus.reception``; Crypt4GH objects in ``s3_archive_bucket``;
  the inbox copy (and its index) removed once ``file.archived`` is on the bus
- state: worker-owned tables in schema ``worker_archive`` (``uploads``, ``objects``, ``archived``)
- settings: ``s3_inbox_bucket`` / ``s3_archive_bucket``, ``archive_secret_key_path``,
  ``archive_public_key_path``, ``archive_key_passphrase`` (see ``infra.keys``),
  ``archive_part_size_mib``, ``archive_spool_dir``, ``consumer_retry_*`` (see ``infra.worker``)

Steps for ``file.qc_passed``: the inbox object is streamed from S3 through Crypt4GH encryption
for the node's archive public key into a spool file (ciphertext only: plaintext never touches
the worker's disk; the spool needs the file's size free; memory stays at about two upload parts
whatever the file size), hashing on the way the plaintext (its size and sha256 must still be
the upload's) and the ciphertext. The ciphertext is uploaded, content-addressed as ``sha256/<ab>/<encrypted sha256>.c4gh``,
multipart above one part, with ``If-None-Match: *`` so nothing is ever overwritten. It is then
read back, decrypted with the node's secret key and re-checksummed (size, sha256 and md5 of
the plaintext against the upload, size and sha256 of the ciphertext). An index beside the inbox
object (the one QC names in ``metrics.index_key``, else ``.bai``/``.csi`` for BAM, ``.crai``
for CRAM, ``.tbi``/``.csi`` for VCF, ``.csi`` for BCF) is archived the same way. Then
``file.archived`` is returned in an ``Outcome`` whose ``after_publish`` deletes the inbox
copies: the worker layer (``infra.worker``) calls it only after the event is on the bus.

Decisions:

- **Idempotent although encryption is randomised.** A redelivery would produce different
  ciphertext, so the worker checks its ``archived`` table first and re-emits the stored
  ``file.archived`` envelope unchanged (same id, same time) without touching the archive.
  Before an upload starts, the object is recorded as ``pending`` with its key; after a crash,
  a pending object that exists in S3 is verified and adopted, so a crash never leaves a
  second copy (a failed multipart upload is aborted, not left behind).
- **The same bytes are archived once.** Within a dataset the same checksum is the same
  ``file_id`` (see ``FileUploaded``), so the check above covers it. Across datasets the
  verified archive object (and its index) is reused: no second copy, but a new accession
  and DRS id, because accessions name a file in a dataset. (Whoever deletes archive objects
  must therefore count references by ``archive_key``.) Two worker instances archiving the
  same bytes for two datasets at the same moment may still store two copies; both are valid.
- **Accession**: the one the reception decider gave the file in ``file.uploaded``
  (``GDI-<node>-FILE-<8 digits>``), remembered with the upload. An upload from before the
  decider assigned them gets the legacy ``GDI-<node>-FILE-<n>``, ``n`` the first 15 hex digits
  of ``sha256("<dataset_id>:<sha256>")``, so replaying an old log gives the same accession.
  **DRS id** = the accession: already URL-safe (``[A-Z0-9-]``), stable and resolvable.
- **Outcomes.** Inbox bytes that differ from the upload, an unknown upload, a dataset that
  differs between upload and QC, or an archived object that does not decrypt to the upload's
  checksums: not retryable, the event goes to the dead-letter topic, nothing is published,
  and the inbox copy stays for an operator (the pending object stays too, for inspection).
  Object-store 5xx/throttling, network, database and broker faults: retried (``infra.worker``),
  and once the retries are exhausted dead-lettered as ``retries_exhausted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg
import crypt4gh.lib
from botocore.exceptions import ClientError
from faststream import Context

from genomebus.infra import db, s3, telemetry
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.settings import Settings
from genomebus.consumers.qc_checks import INDEX_SUFFIXES
from genomebus.infra.faults import object_store_faults
from genomebus.infra.worker import Outcome, Resources, Transient, Worker
from genomebus.schemas.envelope import Envelope, decode, encode, new_envelope
from genomebus.schemas.reception import FileArchived, FileQcPassed, FileUploaded

log = logging.getLogger("genomebus.archive")

NAME = "archive"
ACTOR = f"worker:{NAME}"
_READ_CHUNK = 1024 * 1024
_PARTS_IN_FLIGHT = 2  # measured on SeaweedFS: 2 parts at a time +28% upload rate, 4 no better
_BRIDGE_TIMEOUT_S = 300


class ArchiveRefused(Exception):
    """A file the archive will not take as it is; not retryable, the input is dead-lettered."""


# -- pure parts ------------------------------------------------------------------------------


def accession_for(node_id: str, dataset_id: str, sha256: str) -> str:
    """The accession of a file uploaded before the reception decider assigned them (a legacy event).

    Every ``file.uploaded`` the decider publishes carries its accession; this hash-derived number
    is kept so that replaying an old log still gives old files the accession they had.
    """
    number = int(hashlib.sha256(f"{dataset_id}:{sha256}".encode()).hexdigest()[:15], 16)
    return f"GDI-{node_id}-FILE-{number}"


def archive_key_for(encrypted_sha256: str) -> str:
    return f"sha256/{encrypted_sha256[:2]}/{encrypted_sha256}.c4gh"


def index_keys_for(object_key: str, qc: FileQcPassed) -> list[str]:
    """Where an index may sit beside the inbox object: the one QC names (``metrics.index_key``), then by format.

    A named key is taken only if it is beside the object: the archive copies nothing else.
    """
    named = qc.metrics.get("index_key")
    keys = [named] if isinstance(named, str) and named.startswith(object_key) and named != object_key else []
    return keys + [object_key + suffix for suffix in INDEX_SUFFIXES.get(qc.format, ()) if object_key + suffix not in keys]


class Digest:
    """Size, sha256 and (unless told not to: it is the slowest part) md5 of a byte stream, as it passes."""

    def __init__(self, *, md5: bool = True) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    def facts(self) -> tuple[int, str, str | None]:
        return self.size, self.sha256, self.md5


class SourceError(Exception):
    """A read failure inside crypt4gh, carried out as a non-``OSError`` (crypt4gh swallows ``OSError``)."""


class HashingSource:
    """A readable stream over ``fetch(n)`` that fills every read (crypt4gh treats a short read as EOF)."""

    def __init__(self, fetch: Callable[[int], bytes], chunk: int = _READ_CHUNK, *, md5: bool = True) -> None:
        self._fetch = fetch
        self._chunk = chunk
        self._buffer = memoryview(b"")
        self.digest = Digest(md5=md5)

    def readinto(self, target: bytearray | memoryview) -> int:
        view = memoryview(target).cast("B")
        filled = 0
        while filled < len(view):
            if not self._buffer:
                try:
                    self._buffer = memoryview(self._fetch(self._chunk))
                except Exception as exc:
                    raise SourceError(repr(exc)) from exc
                if not self._buffer:
                    break
            n = min(len(view) - filled, len(self._buffer))
            view[filled:filled + n] = self._buffer[:n]
            self._buffer = self._buffer[n:]
            filled += n
        self.digest.update(view[:filled])
        return filled

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            parts = []
            while chunk := self.read(self._chunk):
                parts.append(chunk)
            return b"".join(parts)
        buf = bytearray(size)
        return bytes(buf[:self.readinto(buf)])


class HashingSink:
    """A writable stream that hashes what passes and, if given a file, writes it there."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self._out = out
        self.digest = Digest()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.digest.update(data)
        if self._out is not None:
            self._out.write(data)
        return len(data)


def encrypt_stream(source: HashingSource, out: BinaryIO, public_key: bytes) -> tuple[Digest, Digest]:
    """Crypt4GH-encrypt ``source`` into ``out`` for ``public_key``; return (plaintext, ciphertext) digests.

    The writer's key is ephemeral, as with ``crypt4gh encrypt`` without ``--sk``: only the
    recipient matters for an archive.
    """
    sink = HashingSink(out)
    crypt4gh.lib.encrypt([(0, os.urandom(32), public_key)], source, sink)
    return source.digest, sink.digest


def decrypt_stream(source: HashingSource, secret_key: bytes) -> tuple[Digest, Digest]:
    """Decrypt a Crypt4GH stream; return (ciphertext, plaintext) digests. Nothing is kept."""
    sink = HashingSink()
    crypt4gh.lib.decrypt([(0, secret_key, None)], source, sink)
    return source.digest, sink.digest


def mismatches(expected: tuple[int, str, str], actual: tuple[int, str, str | None]) -> list[str]:
    """Which of size / sha256 / md5 differ, as readable reasons; a checksum not computed is not compared."""
    return [f"{name} {want} != {got}" for name, want, got in zip(("size", "sha256", "md5"), expected, actual,
                                                                 strict=True) if got is not None and want != got]


# -- what the worker remembers ------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    file_id: UUID
    dataset_id: str
    bucket: str
    object_key: str
    size: int
    sha256: str
    md5: str
    accession: str | None = None

    @property
    def facts(self) -> tuple[int, str, str]:
        return self.size, self.sha256, self.md5


@dataclass(frozen=True)
class StoredObject:
    """One Crypt4GH object in the archive and what it decrypts to."""

    bucket: str
    key: str
    size: int
    sha256: str
    md5: str
    encrypted_size: int
    encrypted_sha256: str
    encrypted_md5: str

    @property
    def facts(self) -> tuple[int, str, str]:
        return self.size, self.sha256, self.md5

    @property
    def encrypted_facts(self) -> tuple[int, str, str]:
        return self.encrypted_size, self.encrypted_sha256, self.encrypted_md5


SCHEMA = "worker_archive"
_TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.uploads (
    file_id uuid PRIMARY KEY, dataset_id text NOT NULL, bucket text NOT NULL, object_key text NOT NULL,
    size bigint NOT NULL, sha256 text NOT NULL, md5 text NOT NULL, event_id uuid NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {SCHEMA}.uploads ADD COLUMN IF NOT EXISTS accession text;
CREATE TABLE IF NOT EXISTS {SCHEMA}.objects (
    file_id uuid NOT NULL, role text NOT NULL CHECK (role IN ('data', 'index')),
    state text NOT NULL CHECK (state IN ('pending', 'verified')),
    bucket text NOT NULL, key text NOT NULL, size bigint NOT NULL, sha256 text NOT NULL, md5 text NOT NULL,
    encrypted_size bigint NOT NULL, encrypted_sha256 text NOT NULL, encrypted_md5 text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, role)
);
CREATE INDEX IF NOT EXISTS objects_by_content ON {SCHEMA}.objects (sha256) WHERE state = 'verified';
CREATE TABLE IF NOT EXISTS {SCHEMA}.archived (
    file_id uuid PRIMARY KEY, dataset_id text NOT NULL, accession text NOT NULL UNIQUE, drs_id text NOT NULL UNIQUE,
    format text NOT NULL, archive_bucket text NOT NULL, archive_key text NOT NULL, size bigint NOT NULL,
    decrypted_sha256 text NOT NULL, decrypted_md5 text NOT NULL, encrypted_size bigint NOT NULL,
    encrypted_sha256 text NOT NULL, encrypted_md5 text NOT NULL, index_key text,
    event_id uuid NOT NULL UNIQUE, envelope jsonb NOT NULL, archived_at timestamptz NOT NULL DEFAULT now()
);
"""
_OBJECT_COLUMNS = "bucket, key, size, sha256, md5, encrypted_size, encrypted_sha256, encrypted_md5"


class ArchiveLedger:
    """The worker's own memory in PostgreSQL: uploads seen, objects written, files archived."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", SCHEMA)  # instances start together
            await conn.execute(_TABLES)

    async def remember_upload(self, upload: FileUploaded, event_id: UUID) -> None:
        """The latest upload of a file wins: a re-upload (same content, same file) may sit elsewhere."""
        await self.pool.execute(
            f"INSERT INTO {SCHEMA}.uploads (file_id, dataset_id, bucket, object_key, size, sha256, md5, event_id, "
            "accession) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (file_id) DO UPDATE SET "
            "bucket = excluded.bucket, object_key = excluded.object_key, event_id = excluded.event_id, "
            f"accession = coalesce({SCHEMA}.uploads.accession, excluded.accession), updated_at = now() "
            f"WHERE {SCHEMA}.uploads.event_id <> excluded.event_id",
            upload.file_id, upload.dataset_id, upload.bucket, upload.object_key, upload.size, upload.sha256,
            upload.md5, event_id, upload.accession,
        )

    async def upload(self, file_id: UUID) -> Upload | None:
        row = await self.pool.fetchrow(
            f"SELECT file_id, dataset_id, bucket, object_key, size, sha256, md5, accession FROM {SCHEMA}.uploads "
            "WHERE file_id = $1", file_id)
        return Upload(**row) if row else None

    async def archived(self, file_id: UUID) -> Envelope[FileArchived] | None:
        row = await self.pool.fetchrow(f"SELECT envelope::text FROM {SCHEMA}.archived WHERE file_id = $1", file_id)
        return decode(row[0].encode()) if row else None

    async def record_archived(self, envelope: Envelope[FileArchived]) -> Envelope[FileArchived]:
        """Keep the event to re-emit on any redelivery; the first record of a file wins."""
        a = envelope.data
        await self.pool.execute(
            f"INSERT INTO {SCHEMA}.archived (file_id, dataset_id, accession, drs_id, format, archive_bucket, "
            "archive_key, size, decrypted_sha256, decrypted_md5, encrypted_size, encrypted_sha256, encrypted_md5, "
            "index_key, event_id, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
            "$15, $16::jsonb) ON CONFLICT (file_id) DO NOTHING",
            a.file_id, a.dataset_id, a.accession, a.drs_id, a.format, a.archive_bucket, a.archive_key, a.size,
            a.decrypted_sha256, a.decrypted_md5, a.encrypted_size, a.encrypted_sha256, a.encrypted_md5, a.index_key,
            envelope.id, encode(envelope).decode(),
        )
        stored = await self.archived(a.file_id)
        if stored is None:  # the row was just written or was already there: only a broken database gets here
            raise RuntimeError(f"the archived record of {a.file_id} vanished from the ledger")
        return stored

    async def object(self, file_id: UUID, role: str) -> tuple[str, StoredObject] | None:
        """(state, object) recorded for this file's data or index."""
        row = await self.pool.fetchrow(
            f"SELECT state, {_OBJECT_COLUMNS} FROM {SCHEMA}.objects WHERE file_id = $1 AND role = $2", file_id, role)
        return (row["state"], StoredObject(**{k: v for k, v in row.items() if k != "state"})) if row else None

    async def verified_twin(self, sha256: str, file_id: UUID) -> tuple[StoredObject, StoredObject | None] | None:
        """A verified archive object of the same plaintext for another file, and that file's index."""
        row = await self.pool.fetchrow(
            f"SELECT file_id FROM {SCHEMA}.objects WHERE sha256 = $1 AND role = 'data' AND state = 'verified' "
            "AND file_id <> $2 ORDER BY updated_at LIMIT 1", sha256, file_id)
        if row is None:
            return None
        data = await self.object(row["file_id"], "data")
        index = await self.object(row["file_id"], "index")
        assert data is not None
        return data[1], index[1] if index and index[0] == "verified" else None

    async def record_object(self, file_id: UUID, role: str, state: str, obj: StoredObject) -> None:
        await self.pool.execute(
            f"INSERT INTO {SCHEMA}.objects (file_id, role, state, {_OBJECT_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (file_id, role) DO UPDATE SET "
            "state = excluded.state, bucket = excluded.bucket, key = excluded.key, size = excluded.size, "
            "sha256 = excluded.sha256, md5 = excluded.md5, encrypted_size = excluded.encrypted_size, "
            "encrypted_sha256 = excluded.encrypted_sha256, encrypted_md5 = excluded.encrypted_md5, updated_at = now()",
            file_id, role, state, obj.bucket, obj.key, obj.size, obj.sha256, obj.md5, obj.encrypted_size,
            obj.encrypted_sha256, obj.encrypted_md5,
        )


# -- the object store side ---------------------------------------------------------------------------


def _is(exc: ClientError, *codes: str) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in codes or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")) in codes


@dataclass
class Archivist:
    """The I/O around the pure parts: stream, encrypt, upload, verify, remember."""

    settings: Settings
    ledger: ArchiveLedger
    s3: Any
    secret_key: bytes
    public_key: bytes

    @property
    def part_size(self) -> int:
        return self.settings.archive_part_size_mib * 1024 * 1024

    async def archive(self, cause: Envelope[FileQcPassed], upload: Upload) -> Envelope[FileArchived]:
        qc = cause.data
        # A file's own earlier attempt comes first: its pending object may already be in the store.
        own = await self.ledger.object(qc.file_id, "data")
        twin = None if own else await self.ledger.verified_twin(upload.sha256, qc.file_id)
        if twin is not None:
            data, index = twin
            await self.ledger.record_object(qc.file_id, "data", "verified", data)
            if index is not None:
                await self.ledger.record_object(qc.file_id, "index", "verified", index)
        else:
            data = await self.archive_object(qc.file_id, "data", upload.bucket, upload.object_key, upload.facts)
            index = None
        if index is None and (index_key := await self.inbox_index(upload, qc)) is not None:
            index = await self.archive_object(qc.file_id, "index", upload.bucket, index_key, None)
        accession = upload.accession or accession_for(self.settings.node_id, qc.dataset_id, upload.sha256)
        archived = FileArchived(
            file_id=qc.file_id, dataset_id=qc.dataset_id, accession=accession, drs_id=accession, format=qc.format,
            archive_bucket=data.bucket, archive_key=data.key, size=data.size, decrypted_sha256=data.sha256,
            decrypted_md5=data.md5, encrypted_size=data.encrypted_size, encrypted_sha256=data.encrypted_sha256,
            encrypted_md5=data.encrypted_md5, index_key=index.key if index else None,
        )
        envelope = new_envelope(archived, source=self.settings.source, actor=ACTOR, cause=cause)
        return await self.ledger.record_archived(envelope)

    async def archive_object(self, file_id: UUID, role: str, bucket: str, key: str,
                             expected: tuple[int, str, str] | None) -> StoredObject:
        """One inbox object into the archive, verified; adopts what a crashed attempt left behind."""
        recorded = await self.ledger.object(file_id, role)
        if recorded is not None:
            state, obj = recorded
            if state == "verified":
                return obj
            if await self.exists(obj.bucket, obj.key):
                await self.verify(obj)
                await self.ledger.record_object(file_id, role, "verified", obj)
                return obj
        spool_dir = self.settings.archive_spool_dir
        with tempfile.TemporaryFile(dir=spool_dir, prefix="archive-", suffix=".c4gh") as spool:
            # A known file is checked by size and sha256 here; its md5 is proven by the read-back below.
            plain, cipher = await self.encrypt(bucket, key, spool, plain_md5=expected is None)
            if expected is not None and (wrong := mismatches(expected, plain.facts())):
                raise ArchiveRefused(f"inbox object {bucket}/{key} is not the uploaded file: {'; '.join(wrong)}")
            md5 = plain.md5 if expected is None else expected[2]
            obj = StoredObject(self.settings.s3_archive_bucket, archive_key_for(cipher.sha256), plain.size,
                               plain.sha256, md5, *cipher.facts())  # type: ignore[arg-type]
            await self.ledger.record_object(file_id, role, "pending", obj)
            await self.upload(spool, obj)
        await self.verify(obj)
        await self.ledger.record_object(file_id, role, "verified", obj)
        return obj

    async def encrypt(self, bucket: str, key: str, spool: BinaryIO, *, plain_md5: bool) -> tuple[Digest, Digest]:
        try:
            response = await self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _is(exc, "NoSuchKey", "404"):
                raise ArchiveRefused(f"inbox object {bucket}/{key} is gone") from exc
            raise
        async with response["Body"] as body:
            source = HashingSource(_bridge(body), md5=plain_md5)
            return await _in_thread(encrypt_stream, source, spool, self.public_key)

    async def upload(self, spool: BinaryIO, obj: StoredObject) -> None:
        """Never overwrite: ``If-None-Match: *``; an existing key holds these very bytes (content address)."""
        spool.seek(0)
        try:
            if obj.encrypted_size <= self.part_size:
                body = await asyncio.to_thread(spool.read)
                await self.s3.put_object(Bucket=obj.bucket, Key=obj.key, Body=body, IfNoneMatch="*")
            else:
                await self.upload_parts(spool, obj)
        except ClientError as exc:
            if not _is(exc, "PreconditionFailed", "412"):
                raise
            log.info("archive object %s already exists; verifying it", obj.key)

    async def upload_parts(self, spool: BinaryIO, obj: StoredObject) -> None:
        """Parts go up ``_PARTS_IN_FLIGHT`` at a time: memory stays at that many parts, whatever the size."""
        upload_id = (await self.s3.create_multipart_upload(Bucket=obj.bucket, Key=obj.key))["UploadId"]
        in_flight: set[asyncio.Task[dict[str, Any]]] = set()
        parts: list[dict[str, Any]] = []
        try:
            number = 0
            while chunk := await asyncio.to_thread(spool.read, self.part_size):
                number += 1
                in_flight.add(asyncio.create_task(self.upload_part(obj, upload_id, number, chunk)))
                del chunk
                if len(in_flight) >= _PARTS_IN_FLIGHT:
                    done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    parts += [task.result() for task in done]
            parts += [await task for task in list(in_flight)]
            in_flight.clear()
            await self.s3.complete_multipart_upload(
                Bucket=obj.bucket, Key=obj.key, UploadId=upload_id, IfNoneMatch="*",
                MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])})
        except BaseException:
            for task in in_flight:
                task.cancel()
            with contextlib.suppress(Exception):
                await self.s3.abort_multipart_upload(Bucket=obj.bucket, Key=obj.key, UploadId=upload_id)
            raise

    async def upload_part(self, obj: StoredObject, upload_id: str, number: int, chunk: bytes) -> dict[str, Any]:
        part = await self.s3.upload_part(Bucket=obj.bucket, Key=obj.key, UploadId=upload_id, PartNumber=number,
                                         Body=chunk)
        return {"PartNumber": number, "ETag": part["ETag"]}

    async def verify(self, obj: StoredObject) -> None:
        """Read the archived object back, decrypt it with the node's key, compare every checksum."""
        response = await self.s3.get_object(Bucket=obj.bucket, Key=obj.key)
        async with response["Body"] as body:
            try:
                # The ciphertext's size and sha256 prove the read-back; md5 is for the plaintext.
                source = HashingSource(_bridge(body), md5=False)
                cipher, plain = await _in_thread(decrypt_stream, source, self.secret_key)
            except ValueError as exc:  # crypt4gh: no header packet or block decrypts with our key
                raise ArchiveRefused(f"archive object {obj.key} does not decrypt with the node key: {exc}") from exc
        wrong = mismatches(obj.encrypted_facts, cipher.facts()) + mismatches(obj.facts, plain.facts())
        if wrong:
            raise ArchiveRefused(f"archive object {obj.key} failed verification: {'; '.join(wrong)}")

    async def exists(self, bucket: str, key: str) -> bool:
        try:
            await self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _is(exc, "404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def inbox_index(self, upload: Upload, qc: FileQcPassed) -> str | None:
        for key in index_keys_for(upload.object_key, qc):
            if await self.exists(upload.bucket, key):
                return key
        return None

    async def remove_inbox_copy(self, upload: Upload, qc: FileQcPassed) -> None:
        """After ``file.archived`` is on the bus; deleting a missing key is a no-op, so this repeats safely."""
        with object_store_faults():
            for key in [upload.object_key, *index_keys_for(upload.object_key, qc)]:
                await self.s3.delete_object(Bucket=upload.bucket, Key=key)


def _bridge(body: Any) -> Callable[[int], bytes]:
    """A blocking ``read(n)`` over an aiobotocore body, for crypt4gh running in a worker thread."""
    loop = asyncio.get_running_loop()

    def fetch(n: int) -> bytes:
        return asyncio.run_coroutine_threadsafe(body.read(n), loop).result(_BRIDGE_TIMEOUT_S)

    return fetch


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return await asyncio.to_thread(func, *args)
    except SourceError as exc:  # the original fault decides retry or dead letter
        raise exc.__cause__ from None  # type: ignore[misc]


# -- handlers ---------------------------------------------------------------------------------------


async def on_uploaded(event: Envelope[FileUploaded], archivist: Archivist = Context("archivist")) -> list[Envelope[Any]]:
    """Remember where the inbox bytes are and their checksums: ``file.qc_passed`` does not carry them."""
    await archivist.ledger.remember_upload(event.data, event.id)
    return []


async def on_qc_passed(event: Envelope[FileQcPassed], archivist: Archivist = Context("archivist")) -> Outcome:
    """Archive the file (or re-emit its stored ``file.archived``); the inbox copy goes once that is published."""
    qc = event.data
    upload = await archivist.ledger.upload(qc.file_id)
    if upload is None:
        raise ArchiveRefused(f"no file.uploaded seen for file {qc.file_id}")
    if upload.dataset_id != qc.dataset_id:
        raise ArchiveRefused(f"file {qc.file_id} was uploaded to {upload.dataset_id}, QC says {qc.dataset_id}")
    archived = await archivist.ledger.archived(qc.file_id)
    if archived is None:
        with object_store_faults():
            archived = await archivist.archive(event, upload)
    return Outcome([archived], after_publish=partial(archivist.remove_inbox_copy, upload, qc))


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    """The archivist (keys, ledger, object store) for the worker's lifetime."""
    secret_key, public_key = load_archive_keys(settings)
    pool = await db.connect(settings, max_size=2)
    try:
        ledger = ArchiveLedger(pool)
        await ledger.create()
        async with s3.client(settings) as client:
            yield {"archivist": Archivist(settings, ledger, client, secret_key, public_key)}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = NAME, resources: Resources = open_resources) -> Worker:
    """The archive's faststream app; tests give it another ``name`` (its own consumer group) or fake ``resources``."""
    worker = Worker(name, settings, resources=resources,
                    description="Encrypts QC-passed files with Crypt4GH, verifies them, assigns accessions")
    worker.handle(on_uploaded)
    worker.handle(on_qc_passed, produces=(FileArchived,))
    return worker


def archive_worker(name: str = NAME) -> Callable[[Settings], Worker]:
    """The archive under another consumer group, for ``main(..., worker=...)``: tests run one beside a node's own."""
    return partial(build, name=name)


async def main(settings: Settings, stop: asyncio.Event, *, worker: Callable[[Settings], Worker] = build) -> None:
    telemetry.setup(settings, NAME)
    await worker(settings).run(stop)
