"""QC worker: checks every uploaded file before it is archived.

- in: ``file.uploaded`` on ``genomebus.reception`` (consumer group ``genomebus-qc``)
- out: ``file.qc_passed`` (format, metrics, warnings) or ``file.qc_failed`` (machine-readable
  reasons) on ``genomebus.reception``, one per upload, its id derived from the upload event;
  an index it built (``.bai`` / ``.crai`` / ``.tbi`` / ``.csi``) is stored beside the inbox
  object as ``<object_key><suffix>`` and named in the metrics as ``index_key``
- decides: nothing itself; ``consumers.qc_checks.check_file`` decides from the bytes
- settings: ``s3_*`` (inbox object store), ``database_url`` (the files projection, see below),
  ``data_dir`` (temporary copies go to ``<data_dir>/tmp/qc`` in the local profile, the system
  temporary directory otherwise), ``consumer_retry_initial_s`` / ``_max_s``

The object is streamed to a temporary file (1 MiB at a time), checked in a thread and
deleted. If the inbox object is gone, the upload may already have been decided and then
archived (the archive worker deletes inbox copies), so a redelivered ``file.uploaded``
must not turn into a contradicting ``file.qc_failed``: when the files projection
(``proj_files.files``) says QC already decided that file, the event is acknowledged
with nothing published. Without that projection the worker reports ``object_missing``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
from botocore.exceptions import ClientError

from genomebus.consumers.qc_checks import INDEX_SUFFIXES, QcResult, check_file
from genomebus.infra import db, s3, telemetry
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient, Worker, WorkerContext
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.reception import FileQcFailed, FileQcPassed, FileUploaded, QcReason

ACTOR = "worker:qc"
CHUNK = 1 << 20
DECIDED_STATES = ("qc_passed", "qc_failed", "archived")
"""File states in ``proj_files.files`` that mean QC already published its outcome."""
_TRANSIENT_S3_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "500", "503"})


async def handle_uploaded(event: Envelope[Any], ctx: WorkerContext) -> list[Envelope[Any]]:
    """Check the uploaded object and publish the verdict (nothing if it was decided and archived already)."""
    upload: FileUploaded = event.data
    store = ctx.resources["s3"]
    with tempfile.TemporaryDirectory(prefix="qc-", dir=_scratch_dir(ctx.settings)) as scratch:
        local = Path(scratch) / _local_name(upload.filename)
        if not await _download(store, upload.bucket, upload.object_key, local):
            if await _already_decided(ctx.resources.get("db"), upload.file_id):
                return []
            where = f"s3://{upload.bucket}/{upload.object_key}"
            missing = QcReason(code="object_missing", message=f"{where} does not exist")
            return [_envelope(ctx, event, _failed(upload, (missing,)))]
        result = await asyncio.to_thread(check_file, local, upload.declared_format, upload.sha256, upload.md5)
        if not result.passed:
            return [_envelope(ctx, event, _failed(upload, result.reasons))]
        metrics = dict(result.metrics)
        if result.index_path is not None:
            metrics["index_key"] = await _store_index(store, upload, result.index_path)
        return [_envelope(ctx, event, _passed(upload, result, metrics))]


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "qc")
    worker = Worker(name="qc", contexts=("reception",), handlers={"file.uploaded": handle_uploaded})
    pool = await db.connect(settings, max_size=2)
    try:
        async with s3.client(settings) as store:
            await worker.run(settings, stop, resources={"s3": store, "db": pool})
    finally:
        await pool.close()


def _passed(upload: FileUploaded, result: QcResult, metrics: dict[str, Any]) -> FileQcPassed:
    return FileQcPassed(file_id=upload.file_id, dataset_id=upload.dataset_id, format=upload.declared_format,
                        metrics=metrics, warnings=result.warnings)


def _failed(upload: FileUploaded, reasons: tuple[QcReason, ...]) -> FileQcFailed:
    codes = ", ".join(dict.fromkeys(r.code for r in reasons))
    return FileQcFailed(file_id=upload.file_id, dataset_id=upload.dataset_id, reasons=reasons,
                        message=f"{upload.filename} failed QC ({codes})")


def _envelope(ctx: WorkerContext, cause: Envelope[Any], data: FileQcPassed | FileQcFailed) -> Envelope[Any]:
    return new_envelope(data, source=ctx.settings.source, actor=ACTOR, cause=cause)


async def _download(store: Any, bucket: str, key: str, target: Path) -> bool:
    """Stream the object to ``target``; False when it does not exist."""
    try:
        response = await store.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return False
        if code in _TRANSIENT_S3_CODES:
            raise Transient(f"object store: {code}") from exc
        raise
    written = 0
    try:
        async with response["Body"] as body:
            with target.open("wb") as fh:
                while chunk := await body.read(CHUNK):
                    written += fh.write(chunk)
    except aiohttp.ClientError as exc:
        raise Transient(f"object store: reading {key} failed: {exc!r}") from exc
    if written != response.get("ContentLength", written):
        raise Transient(f"object store: {key} ended after {written} of {response['ContentLength']} bytes")
    return True


async def _store_index(store: Any, upload: FileUploaded, index: Path) -> str:
    """Put the index beside the inbox object, unless one is there already (objects are never overwritten)."""
    key = upload.object_key + next(s for s in INDEX_SUFFIXES[upload.declared_format] if index.name.endswith(s))
    try:
        await store.head_object(Bucket=upload.bucket, Key=key)
        return key
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    await store.put_object(Bucket=upload.bucket, Key=key, Body=index.read_bytes())
    return key


async def _already_decided(pool: asyncpg.Pool | None, file_id: UUID) -> bool:
    if pool is None:
        return False
    try:
        state = await pool.fetchval("SELECT state FROM proj_files.files WHERE file_id = $1", file_id)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError, asyncpg.UndefinedColumnError):
        return False  # the files projection does not exist (yet)
    return state in DECIDED_STATES


def _scratch_dir(settings: Settings) -> Path | None:
    if settings.profile != "local":
        return None
    path = settings.data_dir / "tmp" / "qc"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _local_name(filename: str) -> str:
    """A safe basename keeping the extensions, so htslib and humans recognise the copy."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name).lstrip(".")
    return name[-200:] or "upload"
