"""Projector: builds the PostgreSQL read models the gateway serves.

- in: every catalogued topic a projection reads (``genomebus.reception`` so far)
- out: rows in ``proj_<name>`` schemas; undecodable or unprojectable events to
  ``genomebus.deadletter``
- decides: nothing; each projection folds events into rows, idempotently
- settings: ``projector_batch_size``, ``consumer_retry_initial_s`` / ``_max_s``

Each projection runs as its own consumer group and stores its Kafka position
in the same transaction as its rows (see ``infra.projection``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from infra import db, kafka, telemetry
from infra.projection import Projection, ProjectionRunner, Record
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.reception import (
    DatasetRegistered,
    DatasetReleased,
    DatasetWithdrawn,
    FileArchived,
    FileQcFailed,
    FileQcPassed,
    FileUploaded,
)


def _history_row(event: Envelope[Any], record: Record) -> tuple[Any, ...]:
    return (event.id, event.subject, event.type, event.time, event.actor, record.topic, record.partition,
            record.offset, json.dumps(event.data.model_dump(mode="json")))


_HISTORY_COLUMNS = (
    "event_id uuid PRIMARY KEY, {subject} NOT NULL, type text NOT NULL, time timestamptz NOT NULL, "
    "actor text NOT NULL, topic text NOT NULL, partition integer NOT NULL, kafka_offset bigint NOT NULL, "
    "data jsonb NOT NULL"
)
_INSERT_HISTORY = (
    'INSERT INTO "{schema}".{table} SELECT * FROM unnest($1::uuid[], $2::{subject_type}[], $3::text[], '
    "$4::timestamptz[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::jsonb[]) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def record_history(conn: asyncpg.Connection, schema: str, table: str, subject_type: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> list[Envelope[Any]]:
    """Insert the events into a history table; return, in log order, those seen for the first time."""
    if not events:
        return []
    rows = [_history_row(e, r) for e, r in events]
    fresh = {row[0] for row in await conn.fetch(
        _INSERT_HISTORY.format(schema=schema, table=table, subject_type=subject_type), *zip(*rows, strict=True))}
    firsts = []
    for event, _record in events:
        if event.id in fresh:
            fresh.discard(event.id)  # a redelivery inside the same batch counts once
            firsts.append(event)
    return firsts


DATASET_EVENTS = ("dataset.registered", "dataset.released", "dataset.withdrawn")


class DatasetsProjection(Projection):
    """Datasets as described by their stewards, their lifecycle, and every event that touched them."""

    name = "datasets"
    version = 2
    contexts = ("reception",)
    tables = {
        "datasets": (
            "dataset_id text PRIMARY KEY, title text NOT NULL, description text NOT NULL, "
            "data_use text[] NOT NULL, keywords text[] NOT NULL, publisher text, landing_page text, "
            "access_rights text NOT NULL, individuals jsonb NOT NULL, biosamples jsonb NOT NULL, "
            "state text NOT NULL, registered_at timestamptz NOT NULL, registered_by text NOT NULL, "
            "released_at timestamptz, released_files text[], withdrawn_at timestamptz, withdrawn_reason text, "
            "updated_at timestamptz NOT NULL"
        ),
        "dataset_events": _HISTORY_COLUMNS.format(subject="dataset_id text"),
    }
    indexes = ("CREATE INDEX IF NOT EXISTS dataset_events_by_dataset ON {schema}.dataset_events (dataset_id, time)",)

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        """Set-based: one statement for the history, one for new datasets, one per lifecycle change."""
        mine = [(e, r) for e, r in events if e.type in DATASET_EVENTS]
        fresh = await record_history(conn, schema, "dataset_events", "text", mine)
        registered: dict[str, tuple[Any, ...]] = {}
        changes: list[Envelope[Any]] = []
        for event in fresh:
            match event.data:
                case DatasetRegistered() as d:  # the first registration of an id wins
                    registered.setdefault(d.dataset_id, (
                        d.dataset_id, d.title, d.description, json.dumps(d.data_use), json.dumps(d.keywords),
                        d.publisher, str(d.landing_page) if d.landing_page else None, d.access_rights,
                        json.dumps([i.model_dump(mode="json") for i in d.individuals]),
                        json.dumps([b.model_dump(mode="json") for b in d.biosamples]),
                        event.time, event.actor,
                    ))
                case _:
                    changes.append(event)
        if registered:
            await conn.execute(
                f'INSERT INTO "{schema}".datasets (dataset_id, title, description, data_use, keywords, publisher, '
                "landing_page, access_rights, individuals, biosamples, state, registered_at, registered_by, "
                "updated_at) SELECT u.dataset_id, u.title, u.description, "
                "ARRAY(SELECT jsonb_array_elements_text(u.data_use::jsonb)), "
                "ARRAY(SELECT jsonb_array_elements_text(u.keywords::jsonb)), u.publisher, u.landing_page, "
                "u.access_rights, u.individuals::jsonb, u.biosamples::jsonb, 'registered', u.registered_at, "
                "u.registered_by, u.registered_at "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
                "$8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[]) AS u(dataset_id, title, "
                "description, data_use, keywords, publisher, landing_page, access_rights, individuals, biosamples, "
                "registered_at, registered_by) ON CONFLICT (dataset_id) DO NOTHING",
                *zip(*registered.values(), strict=True),
            )
        for event in changes:  # rare: applied one by one, in log order, after the registrations
            match event.data:
                case DatasetReleased() as d:
                    await conn.execute(
                        f'UPDATE "{schema}".datasets SET state = \'released\', released_at = $2, released_files = $3, '
                        "updated_at = $2 WHERE dataset_id = $1 AND state = 'registered'",
                        d.dataset_id, event.time, list(d.files))
                case DatasetWithdrawn() as d:
                    await conn.execute(
                        f'UPDATE "{schema}".datasets SET state = \'withdrawn\', withdrawn_at = $2, '
                        "withdrawn_reason = $3, updated_at = $2 WHERE dataset_id = $1",
                        d.dataset_id, event.time, d.reason)


FILE_EVENTS = ("file.uploaded", "file.qc_passed", "file.qc_failed", "file.archived")
# A file's state only moves forward: a late or repeated QC verdict never undoes an archive.
_STATE_RANK = "CASE {col} WHEN 'uploaded' THEN 0 WHEN 'qc_failed' THEN 1 WHEN 'qc_passed' THEN 1 ELSE 2 END"


class FilesProjection(Projection):
    """Files as they move through reception: upload, QC verdict and metrics, archive and accession."""

    name = "files"
    contexts = ("reception",)
    tables = {
        "files": (
            "file_id uuid PRIMARY KEY, dataset_id text NOT NULL, filename text NOT NULL, alias text, "
            "format text NOT NULL, size bigint NOT NULL, sha256 text NOT NULL, md5 text NOT NULL, "
            "inbox_bucket text NOT NULL, inbox_key text NOT NULL, state text NOT NULL, "
            "qc_metrics jsonb, qc_reasons jsonb, qc_warnings jsonb, qc_message text, "
            "accession text UNIQUE, drs_id text UNIQUE, archive_bucket text, archive_key text, index_key text, "
            "encrypted_size bigint, encrypted_sha256 text, encrypted_md5 text, "
            "uploaded_at timestamptz NOT NULL, uploaded_by text NOT NULL, uploads integer NOT NULL, "
            "updated_at timestamptz NOT NULL"
        ),
        "file_events": _HISTORY_COLUMNS.format(subject="file_id uuid"),
    }
    indexes = (
        "CREATE INDEX IF NOT EXISTS files_by_dataset ON {schema}.files (dataset_id)",
        "CREATE INDEX IF NOT EXISTS files_by_alias ON {schema}.files (alias) WHERE alias IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS file_events_by_file ON {schema}.file_events (file_id, time)",
    )

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        mine = [(e, r) for e, r in events if e.type in FILE_EVENTS]
        for event in await record_history(conn, schema, "file_events", "uuid", mine):
            await self._fold(conn, schema, event)

    async def _fold(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any]) -> None:
        advance = f"state = CASE WHEN {_STATE_RANK.format(col='$2')} >= {_STATE_RANK.format(col='state')} " \
                  "THEN $2 ELSE state END"
        match event.data:
            case FileUploaded() as f:
                await conn.execute(
                    f'INSERT INTO "{schema}".files (file_id, dataset_id, filename, alias, format, size, sha256, md5, '
                    "inbox_bucket, inbox_key, state, uploaded_at, uploaded_by, uploads, updated_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'uploaded', $11, $12, 1, $11) "
                    "ON CONFLICT (file_id) DO UPDATE SET uploads = files.uploads + 1",
                    f.file_id, f.dataset_id, f.filename, f.alias, f.declared_format, f.size, f.sha256, f.md5,
                    f.bucket, f.object_key, event.time, event.actor)
            case FileQcPassed() as f:
                await conn.execute(
                    f'UPDATE "{schema}".files SET {advance}, format = $3, qc_metrics = $4::jsonb, '
                    "qc_warnings = $5::jsonb, qc_reasons = NULL, qc_message = NULL, updated_at = $6 "
                    "WHERE file_id = $1",
                    f.file_id, "qc_passed", f.format, json.dumps(f.metrics),
                    json.dumps([w.model_dump() for w in f.warnings]), event.time)
            case FileQcFailed() as f:
                await conn.execute(
                    f'UPDATE "{schema}".files SET {advance}, qc_reasons = $3::jsonb, qc_message = $4, '
                    "updated_at = $5 WHERE file_id = $1",
                    f.file_id, "qc_failed", json.dumps([r.model_dump() for r in f.reasons]), f.message, event.time)
            case FileArchived() as f:
                await conn.execute(
                    f'UPDATE "{schema}".files SET {advance}, accession = $3, drs_id = $4, archive_bucket = $5, '
                    "archive_key = $6, index_key = $7, encrypted_size = $8, encrypted_sha256 = $9, "
                    "encrypted_md5 = $10, updated_at = $11 WHERE file_id = $1",
                    f.file_id, "archived", f.accession, f.drs_id, f.archive_bucket, f.archive_key, f.index_key,
                    f.encrypted_size, f.encrypted_sha256, f.encrypted_md5, event.time)


PROJECTIONS: dict[str, Projection] = {p.name: p for p in (DatasetsProjection(), FilesProjection())}


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "projector")
    pool = await db.connect(settings, max_size=len(PROJECTIONS) + 2)
    try:
        async with kafka.Publisher(settings) as publisher:
            runners = [ProjectionRunner(settings, pool, p, publisher) for p in PROJECTIONS.values()]
            await asyncio.gather(*(r.run(stop) for r in runners))
    finally:
        await pool.close()
