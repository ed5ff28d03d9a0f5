"""QC worker: checks every uploaded file before it is archived.

- in: ``file.uploaded`` on ``genomebus.reception`` (consumer group ``genomebus-qc``; ``on_uploaded``)
- out: ``file.qc_passed`` (format, metrics, warnings) or ``file.qc_failed`` (machine-readable
  reasons) on ``genomebus.reception``, one per upload, its id derived from the upload event;
  an index it built (``.bai`` / ``.crai`` / ``.tbi`` / ``.csi``) is stored beside the inbox
  object as ``<object_key><suffix>`` and named in the metrics as ``index_key``
- decides: ``dataset_refusal`` (below) whether the upload's dataset may take files at all: an
  unknown dataset (``unknown_dataset``), a withdrawn one (``dataset_withdrawn``) or a released one
  (``dataset_released``) fails QC without its bytes being read, so a ``file.uploaded`` published
  by hand, bypassing the reception decider, is never archived; then
  ``consumers.qc_checks.check_file`` decides from the bytes
- settings: ``s3_*`` (inbox object store), ``database_url`` (the datasets and files read models),
  ``data_dir`` (temporary copies go to ``<data_dir>/tmp/qc`` in the local profile, the system
  temporary directory otherwise), ``consumer_retry_*`` (see ``infra.worker``),
  ``read_your_writes_timeout_s`` (how long to wait for the datasets projection, below)

The dataset is registered before its files are uploaded, but the datasets projection may not
have folded that yet when the upload arrives. So an unknown dataset is only believed once the
projection has passed the upload's own position (waiting at most ``read_your_writes_timeout_s``;
a projection that does not get there is a transient fault, retried).

The object is streamed to a temporary file (1 MiB at a time), checked in a thread and
deleted. If the inbox object is gone, the upload may already have been decided and then
archived (the archive worker deletes inbox copies), so a redelivered ``file.uploaded``
must not turn into a contradicting ``file.qc_failed``: when the files read model
(``infra.readmodels.files.file_state``) says QC already decided that file, the event is
acknowledged with nothing published. Otherwise the worker reports ``object_missing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from botocore.exceptions import ClientError
from faststream import Context

from genomebus.consumers.qc_checks import INDEX_SUFFIXES, QcResult, check_file
from genomebus.infra import db, s3, telemetry
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import datasets, files
from genomebus.infra.settings import Settings
from genomebus.infra.worker import InputRecord, Resources, Transient, Worker, WorkerSettings, scratch_dir
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.reception import FileQcFailed, FileQcPassed, FileUploaded, QcReason

NAME = "qc"
ACTOR = "worker:qc"
CHUNK = 1 << 20
_TRANSIENT_S3_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "500", "503"})
_DATASET_REFUSALS = {
    None: ("unknown_dataset", "dataset {id} is not registered on this node"),
    "withdrawn": ("dataset_withdrawn", "dataset {id} is withdrawn: it takes no more files"),
    "released": ("dataset_released", "dataset {id} is released: its files are fixed"),
}


def dataset_refusal(dataset_id: str, state: str | None) -> QcReason | None:
    """Why a dataset in ``state`` (None: unknown) takes no uploaded file, or None when it does."""
    if state not in _DATASET_REFUSALS:
        return None
    code, message = _DATASET_REFUSALS[state]
    return QcReason(code=code, message=message.format(id=dataset_id))


async def on_uploaded(event: Envelope[FileUploaded], settings: WorkerSettings, record: InputRecord,
                      store: Any = Context("s3"), pool: Any = Context("db")) -> list[Envelope[Any]]:
    """Check the uploaded object and publish the verdict (nothing if it was decided and archived already)."""
    upload = event.data
    refusal = dataset_refusal(upload.dataset_id, await _dataset_state(pool, settings, upload.dataset_id, record))
    # A redelivered upload of a file decided long ago (archived, then its dataset released) is no new file:
    # it must not turn into a contradicting verdict. It goes on below and ends as "already decided".
    if refusal is not None and await files.file_state(pool, upload.file_id) not in files.QC_DECIDED:
        return [_envelope(settings, event, _failed(upload, (refusal,)))]
    with tempfile.TemporaryDirectory(prefix="qc-", dir=scratch_dir(settings, "qc")) as scratch:
        local = Path(scratch) / _local_name(upload.filename)
        if not await _download(store, upload.bucket, upload.object_key, local):
            if await files.file_state(pool, upload.file_id) in files.QC_DECIDED:
                return []
            where = f"s3://{upload.bucket}/{upload.object_key}"
            missing = QcReason(code="object_missing", message=f"{where} does not exist")
            return [_envelope(settings, event, _failed(upload, (missing,)))]
        result = await asyncio.to_thread(check_file, local, upload.declared_format, upload.sha256, upload.md5)
        if not result.passed:
            return [_envelope(settings, event, _failed(upload, result.reasons))]
        metrics = dict(result.metrics)
        if result.index_path is not None:
            metrics["index_key"] = await _store_index(store, upload, result.index_path)
        return [_envelope(settings, event, _passed(upload, result, metrics))]


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    """The inbox object store and a small pool for the read models, for the worker's lifetime."""
    pool = await db.connect(settings, max_size=2)
    try:
        async with s3.client(settings) as store:
            yield {"s3": store, "db": pool}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = NAME, resources: Resources = open_resources) -> Worker:
    """The QC worker's faststream app; tests pass fake ``resources``."""
    worker = Worker(name, settings, resources=resources, description="Checks every uploaded file before it is archived")
    worker.handle(on_uploaded, produces=(FileQcPassed, FileQcFailed))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, NAME)
    await build(settings).run(stop)


async def _dataset_state(pool: asyncpg.Pool, settings: Settings, dataset_id: str, record: Any) -> str | None:
    """The dataset's state; an unknown dataset only once the projection has passed this very upload."""
    state = await datasets.dataset_state(pool, dataset_id)
    if state is None:
        await wait_for_position(pool, datasets.DatasetsProjection, record.topic, record.partition, record.offset,
                                settings.read_your_writes_timeout_s)  # NotYetProjected is a TimeoutError: retried
        state = await datasets.dataset_state(pool, dataset_id)
    return state


def _passed(upload: FileUploaded, result: QcResult, metrics: dict[str, Any]) -> FileQcPassed:
    return FileQcPassed(file_id=upload.file_id, dataset_id=upload.dataset_id, format=upload.declared_format,
                        metrics=metrics, warnings=result.warnings)


def _failed(upload: FileUploaded, reasons: tuple[QcReason, ...]) -> FileQcFailed:
    codes = ", ".join(dict.fromkeys(r.code for r in reasons))
    return FileQcFailed(file_id=upload.file_id, dataset_id=upload.dataset_id, reasons=reasons,
                        message=f"{upload.filename} failed QC ({codes})")


def _envelope(settings: Settings, cause: Envelope[Any], data: FileQcPassed | FileQcFailed) -> Envelope[Any]:
    return new_envelope(data, source=settings.source, actor=ACTOR, cause=cause)


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



def _local_name(filename: str) -> str:
    """A safe basename keeping the extensions, so htslib and humans recognise the copy."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name).lstrip(".")
    return name[-200:] or "upload"
