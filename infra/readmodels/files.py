"""The ``files`` read model: files as they move through reception (upload, QC, archive, accession).

Owned here: the tables, the version and every query others run on them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.infra.readmodels.history import HISTORY_COLUMNS, HistoryEntry, history, record_history
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.reception import FileArchived, FileQcFailed, FileQcPassed, FileUploaded

FILE_EVENTS = ("file.uploaded", "file.qc_passed", "file.qc_failed", "file.archived")
# A file's state only moves forward: a late or repeated QC verdict never undoes an archive.
_STATE_RANK = "CASE {col} WHEN 'uploaded' THEN 0 WHEN 'qc_failed' THEN 1 WHEN 'qc_passed' THEN 1 ELSE 2 END"


class FilesProjection(Projection):
    """Files as they move through reception: upload, QC verdict and metrics, archive and accession."""

    name = "files"
    version = 3  # v2: the accession is known from the upload on; v3: a re-upload's alias replaces the old one
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
        "file_events": HISTORY_COLUMNS.format(subject="file_id uuid"),
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
                    "inbox_bucket, inbox_key, state, uploaded_at, uploaded_by, uploads, updated_at, accession, drs_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'uploaded', $11, $12, 1, $11, $13, $13) "
                    "ON CONFLICT (file_id) DO UPDATE SET uploads = files.uploads + 1, "
                    "alias = coalesce(excluded.alias, files.alias), "
                    "accession = coalesce(files.accession, excluded.accession), "
                    "drs_id = coalesce(files.drs_id, excluded.drs_id)",
                    f.file_id, f.dataset_id, f.filename, f.alias, f.declared_format, f.size, f.sha256, f.md5,
                    f.bucket, f.object_key, event.time, event.actor, f.accession)
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




SCHEMA = FilesProjection.live_schema()
QC_DECIDED = frozenset({"qc_passed", "qc_failed", "archived"})
"""File states that mean QC has published its verdict."""


async def highest_accession_number(conn: asyncpg.Connection | asyncpg.Pool, node_id: str) -> int:
    """The highest number among this node's fixed-width accessions (``GDI-FI-FILE-00000042``), 0 if none."""
    return await conn.fetchval(
        f"SELECT coalesce(max(substring(accession from '[0-9]+$')::bigint), 0) FROM \"{SCHEMA}\".files "
        "WHERE accession ~ $1", f"^GDI-{node_id}-FILE-[0-9]{{8,}}$")


async def file_state(conn: asyncpg.Connection | asyncpg.Pool, file_id: UUID) -> str | None:
    return await conn.fetchval(f'SELECT state FROM "{SCHEMA}".files WHERE file_id = $1', file_id)


async def files_of(conn: asyncpg.Connection, dataset_id: str) -> list[dict[str, Any]]:
    """Every file of a dataset, by name: id, accession, name, alias, format, size, state and QC reasons."""
    rows = await conn.fetch(
        f'SELECT file_id, accession, filename, alias, format, size, state, sha256, qc_reasons FROM "{SCHEMA}".files '
        "WHERE dataset_id = $1 ORDER BY filename, file_id", dataset_id)
    return [{**dict(r), "qc_reasons": _json(r["qc_reasons"])} for r in rows]


async def get_file(conn: asyncpg.Connection, *, file_id: UUID | None = None,
                   accession: str | None = None) -> dict[str, Any] | None:
    """One file by id or accession, with its dataset's state (``dataset_state``: None if never registered)."""
    from genomebus.infra.readmodels.datasets import SCHEMA as DATASETS

    where, key = ("file_id = $1", file_id) if file_id is not None else ("accession = $1", accession)
    row = await conn.fetchrow(f'SELECT f.*, d.state AS dataset_state FROM "{SCHEMA}".files f '
                              f'LEFT JOIN "{DATASETS}".datasets d USING (dataset_id) WHERE f.{where}', key)
    if row is None:
        return None
    out = dict(row)
    for column in ("qc_metrics", "qc_reasons", "qc_warnings"):
        out[column] = _json(out[column])
    return out


async def file_history(conn: asyncpg.Connection, file_id: UUID) -> list[HistoryEntry]:
    return await history(conn, SCHEMA, "file_events", "file_id", file_id)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# -- the archive as DRS objects ------------------------------------------------------------------------

_OBJECT_COLUMNS = ("f.file_id, f.dataset_id, f.filename, f.alias, f.format, f.size, f.sha256, f.md5, f.accession, "
                   "f.drs_id, f.archive_bucket, f.archive_key, f.index_key, f.encrypted_size, f.uploaded_at, "
                   "f.updated_at, d.state AS dataset_state, d.access_rights")


async def drs_object(conn: asyncpg.Connection | asyncpg.Pool, object_id: str) -> dict[str, Any] | None:
    """An archived file by DRS id (its accession) or by the alias it was submitted with, with its dataset's state.

    Aliases are unique per node from the reception decider on; should an older log hold one twice,
    the id wins over an alias and the earliest upload over later ones.
    """
    from genomebus.infra.readmodels.datasets import SCHEMA as DATASETS

    row = await conn.fetchrow(
        f'SELECT {_OBJECT_COLUMNS} FROM "{SCHEMA}".files f LEFT JOIN "{DATASETS}".datasets d USING (dataset_id) '
        "WHERE f.state = 'archived' AND (f.drs_id = $1 OR f.alias = $1) "
        "ORDER BY (f.drs_id = $1) DESC, f.uploaded_at, f.file_id LIMIT 1", object_id)
    return dict(row) if row is not None else None


async def dataset_objects(conn: asyncpg.Connection | asyncpg.Pool, dataset_id: str) -> list[dict[str, Any]]:
    """The archived files of a dataset, as ``drs_object`` gives them, by accession."""
    from genomebus.infra.readmodels.datasets import SCHEMA as DATASETS

    rows = await conn.fetch(
        f'SELECT {_OBJECT_COLUMNS} FROM "{SCHEMA}".files f LEFT JOIN "{DATASETS}".datasets d USING (dataset_id) '
        "WHERE f.state = 'archived' AND f.dataset_id = $1 ORDER BY f.accession", dataset_id)
    return [dict(r) for r in rows]


async def object_totals(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, int]:
    """How many archived files of released datasets this node serves, and their plaintext bytes."""
    from genomebus.infra.readmodels.datasets import SCHEMA as DATASETS

    row = await conn.fetchrow(
        f'SELECT count(*) AS n, coalesce(sum(f.size), 0) AS bytes FROM "{SCHEMA}".files f '
        f'JOIN "{DATASETS}".datasets d USING (dataset_id) WHERE f.state = \'archived\' AND d.state = \'released\'')
    return int(row["n"]), int(row["bytes"])
