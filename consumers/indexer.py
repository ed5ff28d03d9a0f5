"""Indexer: makes released datasets findable by the Beacon and the catalogue, and unfindable when withdrawn.

- in: ``genomebus.reception`` (consumer group ``genomebus-indexer``) — ``dataset.registered`` and
  ``dataset.updated`` (``on_registered``, ``on_updated``: the description remembered; an indexed
  dataset's individuals, biosamples, terms and description re-indexed), ``dataset.released``
  (``on_released``: index it), ``dataset.withdrawn`` (``on_withdrawn``: take it out)
- out: ``dataset.indexed`` (counts, assembly, files), ``dataset.index_failed`` (machine-readable
  reasons naming the file) and ``dataset.unindexed`` on ``genomebus.discovery``, each id derived
  from its cause; rows in the ``discovery`` schema (``infra.discovery.index``)
- state: ``worker_indexer.descriptions``, the latest description of every dataset, folded from
  ``dataset.registered``/``dataset.updated``. A release carries only file accessions, and the
  description (individuals, biosamples, the metadata fields) travels on those events, which come
  before the release in the dataset's partition: the index is built from the log itself, the same
  way on every replay.
- settings: ``database_url``, ``s3_*`` and the archive key (``archive_secret_key_path``,
  ``archive_key_passphrase``: the worker decrypts archived VCF/BCF files), ``data_dir`` (scratch
  copies under ``<data_dir>/tmp/indexer`` in the local profile, the system temporary directory
  otherwise), ``read_your_writes_timeout_s`` (waiting for the files read model), ``consumer_retry_*``

Steps for ``dataset.released``: the released files come from the files read model (once it has
passed the release's own position); every VCF/BCF is decrypted as it streams from the archive into
a scratch file (the plaintext exists only there, only while the dataset is loaded), BAM/CRAM only
as far as their header (the read groups' samples, for runs); then ``index.index_dataset`` loads
them (COPY into the dataset's own partition) and ``dataset.indexed`` is published. A variant file
that cannot be read makes the dataset ``failed`` (nothing of it is served) and publishes
``dataset.index_failed``.

Decisions (``release_action``, a pure function):

- **A redelivered release is not indexed twice.** The index remembers which ``dataset.released``
  each dataset was loaded from: the same event again re-publishes the same ``dataset.indexed``
  (same derived id) without loading anything; if the dataset was withdrawn since, nothing.
- **A withdrawn dataset is not brought back.** When the datasets read model already says
  ``withdrawn`` (a replay, or a release and withdrawal in quick succession), the release is not
  indexed; the withdrawal that follows publishes ``dataset.unindexed``.
- **Withdrawal within seconds.** ``dataset.withdrawn`` sets the state ``unindexed`` in one short
  transaction (every query filters on it), then detaches and drops the partition.
- **Replay rebuilds.** The index is a projection of the log: ``index.forget_all`` empties it, and
  the worker consuming the reception topic from the beginning (a reset or new consumer group)
  loads every released, not withdrawn, dataset again, from the same descriptions and files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import asyncpg
import pysam
from faststream import Context

from genomebus.infra import db, s3, telemetry
from genomebus.infra.archive_store import Archive
from genomebus.infra.discovery import index
from genomebus.infra.discovery.index import FileInfo, IndexSummary, VariantSource
from genomebus.infra.discovery.vcf import VariantFileError
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import datasets, files
from genomebus.infra.settings import Settings
from genomebus.infra.faults import object_store_faults
from genomebus.infra.worker import InputRecord, Resources, Transient, Worker, WorkerSettings, scratch_dir
from genomebus.schemas.discovery import DatasetIndexed, DatasetIndexFailed, DatasetUnindexed
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.reception import (
    DatasetDescription,
    DatasetRegistered,
    DatasetReleased,
    DatasetUpdated,
    DatasetWithdrawn,
    Reason,
)

log = logging.getLogger("genomebus.indexer")

NAME = "indexer"
ACTOR = f"worker:{NAME}"
ALIGNMENT_FORMATS = ("BAM", "CRAM")
_HEADER_PROBES = (1 << 20, 16 << 20)  # plaintext bytes tried for a BAM/CRAM header


# -- the decision -----------------------------------------------------------------------------------


ReleaseAction = Literal["index", "announce", "nothing"]


def release_action(summary: IndexSummary | None, release_event_id: UUID, *, withdrawn: bool) -> ReleaseAction:
    """What a ``dataset.released`` asks of the indexer, given what the index holds and the dataset's state.

    ``announce``: loaded from this very release and still indexed — publish ``dataset.indexed`` again.
    ``nothing``: loaded from it and withdrawn since, or withdrawn already. ``index``: load it.
    """
    if summary is not None and summary.release_event_id == release_event_id:
        if summary.state == "indexed":
            return "announce"
        if summary.state == "unindexed":
            return "nothing"
    return "nothing" if withdrawn else "index"


def indexed_event(summary: IndexSummary) -> DatasetIndexed:
    return DatasetIndexed(dataset_id=summary.dataset_id, release_event_id=summary.release_event_id,
                          variant_files=summary.variant_files, other_files=summary.other_files,
                          variants=summary.variants, samples=summary.samples, individuals=summary.individuals,
                          biosamples=summary.biosamples, assembly=summary.assembly)


# -- what the handlers do I/O with ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleasedFile:
    """An archived file of a released dataset, as the files read model knows it."""

    accession: str
    drs_id: str
    format: str
    size: int
    archive_bucket: str
    archive_key: str
    encrypted_size: int | None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    archived_at: datetime | None = None


DESCRIPTIONS = "worker_indexer"
_TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {DESCRIPTIONS};
CREATE TABLE IF NOT EXISTS {DESCRIPTIONS}.descriptions (
    dataset_id text PRIMARY KEY, description jsonb NOT NULL, event_id uuid NOT NULL, time timestamptz NOT NULL
);
"""


class Indexer:
    """The I/O around the decisions: descriptions, read models, the archive, the index."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, archive: Archive | None) -> None:
        self.settings, self.pool, self.archive = settings, pool, archive

    async def create(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(_TABLES)

    async def remember(self, event: Envelope[Any], description: DatasetDescription, *, first: bool) -> None:
        """Keep the dataset's description: the first registration, or any update (the log's order is kept)."""
        conflict = "DO NOTHING" if first else \
            "DO UPDATE SET description = excluded.description, event_id = excluded.event_id, time = excluded.time"
        await self.pool.execute(
            f"INSERT INTO {DESCRIPTIONS}.descriptions (dataset_id, description, event_id, time) "
            f"VALUES ($1, $2::jsonb, $3, $4) ON CONFLICT (dataset_id) {conflict}",
            event.subject, json.dumps(description.model_dump(mode="json")), event.id, event.time)

    async def description(self, dataset_id: str) -> DatasetDescription | None:
        value = await self.pool.fetchval(f"SELECT description FROM {DESCRIPTIONS}.descriptions "
                                         "WHERE dataset_id = $1", dataset_id)
        return None if value is None else DatasetDescription.model_validate_json(value)

    async def summary(self, dataset_id: str) -> IndexSummary | None:
        return await index.summary(self.pool, dataset_id)

    async def withdrawn(self, dataset_id: str) -> bool:
        return await datasets.dataset_state(self.pool, dataset_id) == "withdrawn"

    async def released_files(self, released: DatasetReleased, record: Any) -> list[ReleasedFile]:
        """The release's files from the files read model, once it has passed the release's position."""
        await wait_for_position(self.pool, files.FilesProjection, record.topic, record.partition, record.offset,
                                self.settings.read_your_writes_timeout_s)
        out = []
        for accession in released.files:
            row = await files.get_file(self.pool, accession=accession)  # type: ignore[arg-type]
            if row is None or row["state"] != "archived":
                raise Transient(f"file {accession} of {released.dataset_id} is not archived in the files read model")
            out.append(ReleasedFile(accession=accession, drs_id=row["drs_id"] or accession, format=row["format"],
                                    size=row["size"], archive_bucket=row["archive_bucket"],
                                    archive_key=row["archive_key"], encrypted_size=row["encrypted_size"],
                                    metrics=row["qc_metrics"] or {}, archived_at=row["updated_at"]))
        return out

    async def index(self, released: DatasetReleased, release_event_id: UUID, description: DatasetDescription,
                    archived: Sequence[ReleasedFile]) -> IndexSummary:
        """Decrypt the variant files to scratch, read the alignment headers, load the dataset."""
        with tempfile.TemporaryDirectory(prefix="indexer-", dir=scratch_dir(self.settings, "indexer")) as scratch:
            variant_files, other_files = [], []
            for item in archived:
                if item.format in index.VARIANT_FORMATS:
                    path = Path(scratch) / f"{item.accession}.{item.format.lower()}"
                    await self._decrypt(item, path)
                    variant_files.append(VariantSource(item.accession, path, drs_id=item.drs_id, format=item.format,
                                                       size=item.size, metrics=item.metrics,
                                                       archived_at=item.archived_at))
                else:
                    names = await self._alignment_samples(item, Path(scratch)) \
                        if item.format in ALIGNMENT_FORMATS else ()
                    other_files.append(FileInfo(item.accession, item.format, drs_id=item.drs_id, size=item.size,
                                                sample_names=names, metrics=item.metrics,
                                                archived_at=item.archived_at))
            return await index.index_dataset(self.pool, dataset_id=released.dataset_id,
                                             release_event_id=release_event_id, description=description,
                                             variant_files=variant_files, other_files=other_files)

    async def mark_failed(self, dataset_id: str, release_event_id: UUID, description: DatasetDescription) -> None:
        await index.mark_failed(self.pool, dataset_id=dataset_id, release_event_id=release_event_id,
                                description=description)

    async def unindex(self, dataset_id: str, reason: str) -> bool:
        return await index.unindex_dataset(self.pool, dataset_id, reason)

    async def index_metadata(self, dataset_id: str, description: DatasetDescription) -> IndexSummary | None:
        return await index.index_metadata(self.pool, dataset_id=dataset_id, description=description)

    async def _decrypt(self, item: ReleasedFile, target: Path, limit: int | None = None) -> None:
        assert self.archive is not None
        with object_store_faults():
            obj = await self.archive.open(item.archive_bucket, item.archive_key, item.encrypted_size)
            with target.open("wb") as out:
                async for piece in obj.stream(0, limit):
                    out.write(piece)

    async def _alignment_samples(self, item: ReleasedFile, scratch: Path) -> tuple[str, ...]:
        """The SM of a BAM/CRAM's read groups, from the first megabytes of its plaintext (the header)."""
        path = scratch / f"{item.accession}.header.{item.format.lower()}"
        for probe in _HEADER_PROBES:
            await self._decrypt(item, path, min(probe, item.size))
            names = await asyncio.to_thread(alignment_samples, path, item.format)
            if names is not None:
                return names
        raise ValueError(f"{item.accession}: no {item.format} header in its first {_HEADER_PROBES[-1]} bytes")


def alignment_samples(path: Path, fmt: str) -> tuple[str, ...] | None:
    """The distinct SM of the read groups of a BAM/CRAM header (the file may be cut after it); None if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no BGZF EOF marker": only the header was fetched
            with pysam.AlignmentFile(str(path), "rc" if fmt == "CRAM" else "rb", check_sq=False,
                                     ignore_truncation=True) as alignments:
                groups = alignments.header.to_dict().get("RG", [])
    except (OSError, ValueError):
        return None
    return tuple(dict.fromkeys(rg["SM"] for rg in groups if rg.get("SM")))


# -- handlers ---------------------------------------------------------------------------------------------


async def on_registered(event: Envelope[DatasetRegistered],
                        indexer: Indexer = Context("indexer")) -> list[Envelope[Any]]:
    """Remember the description a release will be indexed with."""
    await indexer.remember(event, _description(event.data), first=True)
    return []


async def on_updated(event: Envelope[DatasetUpdated], indexer: Indexer = Context("indexer")) -> list[Envelope[Any]]:
    """Remember the new description; an indexed dataset gets its metadata re-indexed (variants kept)."""
    description = _description(event.data)
    await indexer.remember(event, description, first=False)
    await indexer.index_metadata(event.data.dataset_id, description)
    return []


async def on_released(event: Envelope[DatasetReleased], settings: WorkerSettings, record: InputRecord,
                      indexer: Indexer = Context("indexer")) -> list[Envelope[Any]]:
    """Index the released dataset (or re-announce it, or nothing: see ``release_action``)."""
    released = event.data
    summary = await indexer.summary(released.dataset_id)
    action = release_action(summary, event.id, withdrawn=await indexer.withdrawn(released.dataset_id))
    if action == "announce":
        assert summary is not None
        return [_envelope(settings, event, indexed_event(summary))]
    if action == "nothing":
        return []
    description = await indexer.description(released.dataset_id)
    if description is None:
        raise LookupError(f"no dataset.registered seen for {released.dataset_id}: its description is unknown")
    archived = await indexer.released_files(released, record)
    try:
        summary = await indexer.index(released, event.id, description, archived)
    except VariantFileError as exc:
        await indexer.mark_failed(released.dataset_id, event.id, description)
        reason = Reason(code=exc.code, message=f"{exc.accession or 'a variant file'}: {exc.message}")
        return [_envelope(settings, event, DatasetIndexFailed(dataset_id=released.dataset_id,
                                                              release_event_id=event.id, reasons=(reason,)))]
    log.info("indexer: %s indexed: %d variants, %d samples", released.dataset_id, summary.variants, summary.samples)
    return [_envelope(settings, event, indexed_event(summary))]


async def on_withdrawn(event: Envelope[DatasetWithdrawn], settings: WorkerSettings,
                       indexer: Indexer = Context("indexer")) -> list[Envelope[Any]]:
    """Take the dataset out of discovery; say so (again, on a redelivery) if it was in it."""
    withdrawn = event.data
    if not await indexer.unindex(withdrawn.dataset_id, withdrawn.reason):
        summary = await indexer.summary(withdrawn.dataset_id)
        if summary is None or summary.state != "unindexed":
            return []  # never released (or never seen released): nothing left discovery
    return [_envelope(settings, event, DatasetUnindexed(dataset_id=withdrawn.dataset_id, reason=withdrawn.reason))]


# -- the worker -------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    """The index's pool, the archive (decrypting with the node key) and the description table."""
    secret_key, _ = load_archive_keys(settings)
    pool = await db.connect(settings, max_size=3)
    try:
        async with s3.client(settings) as client:
            indexer = Indexer(settings, pool, Archive(client, secret_key, objects=8))
            await indexer.create()
            yield {"indexer": indexer}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = NAME, resources: Resources = open_resources) -> Worker:
    """The indexer's faststream app; tests give it another ``name`` (its own consumer group) or fake ``resources``."""
    worker = Worker(name, settings, resources=resources,
                    description="Indexes released datasets for discovery; takes withdrawn ones out")
    worker.handle(on_registered)
    worker.handle(on_updated)
    worker.handle(on_released, produces=(DatasetIndexed, DatasetIndexFailed))
    worker.handle(on_withdrawn, produces=(DatasetUnindexed,))
    return worker


async def main(settings: Settings, stop: asyncio.Event, *, name: str = NAME) -> None:
    telemetry.setup(settings, NAME)
    await build(settings, name=name).run(stop)


def _description(event: DatasetDescription) -> DatasetDescription:
    return DatasetDescription.model_validate(event.description_fields())


def _envelope(settings: Settings, cause: Envelope[Any], data: Any) -> Envelope[Any]:
    return new_envelope(data, source=settings.source, actor=ACTOR, cause=cause)

