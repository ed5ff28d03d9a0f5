"""The ``airlock`` read model: each output request (one per finished task), its checks, approvals and release.

A request's ``state``: ``checking`` (``result.ready``) → ``review`` (``output.checked``) → ``released`` |
``rejected``; an ended request never changes again. Released outputs are also kept one per row, by
their DRS id, for the DRS endpoints and the data URLs (their owner alone reads them). The output
commands' outcomes are kept so the gateway can answer a checker with what was decided. Owned here:
the tables, the version, the queries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.schemas.airlock import (
    AIRLOCK_COMMANDS,
    OutputApproved,
    OutputChecked,
    OutputRejected,
    OutputReleased,
)
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.tasks import ResultReady

Conn = asyncpg.Connection | asyncpg.Pool
COMMAND_TYPES = {c.model_fields["type"].default for c in AIRLOCK_COMMANDS}
STATES = ("checking", "review", "released", "rejected")


class AirlockProjection(Projection):
    """Output requests and released outputs."""

    name = "airlock"
    version = 1
    contexts = ("processing", "processing.commands")
    tables = {
        "requests": (
            "task_id text PRIMARY KEY, owner text NOT NULL, state text NOT NULL, outputs jsonb NOT NULL, "
            "checks jsonb, approvals jsonb NOT NULL, rejection jsonb, released jsonb, created_at timestamptz NOT NULL, "
            "updated_at timestamptz NOT NULL"
        ),
        "released": (
            "object_id text PRIMARY KEY, task_id text NOT NULL, owner text NOT NULL, path text NOT NULL, "
            "name text NOT NULL, size bigint NOT NULL, sha256 text NOT NULL, bucket text NOT NULL, key text NOT NULL, "
            "encrypted_size bigint NOT NULL, released_at timestamptz NOT NULL"
        ),
        "commands": (
            "command_id uuid PRIMARY KEY, type text, task_id text, actor text, requested_at timestamptz, "
            "status text NOT NULL, outcome_event_id uuid, outcome_type text, reasons jsonb, state text, "
            "decided_at timestamptz"
        ),
    }
    indexes = ("CREATE INDEX IF NOT EXISTS requests_by_state ON {schema}.requests (state, created_at, task_id)",)

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        for event, _ in events:
            await _fold(conn, f'"{schema}"', event)


_OPEN = "state IN ('checking', 'review')"


async def _fold(conn: asyncpg.Connection, s: str, event: Envelope[Any]) -> None:
    data = event.data
    if event.type in COMMAND_TYPES:
        await conn.execute(
            f"INSERT INTO {s}.commands (command_id, type, task_id, actor, requested_at, status) "
            "VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (command_id) DO UPDATE SET type = $2, task_id = $3, "
            "actor = $4, requested_at = $5", event.id, event.type, data.task_id, event.actor, event.time)
        return
    # A command is decided by its last outcome: the approval that releases is decided by the release
    # that follows it, so whoever waits on the command sees the request released.
    decided = (isinstance(data, OutputApproved) and data.approvals < data.required) or isinstance(
        data, OutputReleased) or (isinstance(data, OutputRejected) and not data.by.startswith("worker:"))
    rejected = isinstance(data, ProcessingCommandRejected) and data.command_type in COMMAND_TYPES
    if (decided or rejected) and event.causation_id is not None:
        await conn.execute(
            f"INSERT INTO {s}.commands (command_id, status, outcome_event_id, outcome_type, reasons, state, "
            "decided_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (command_id) DO UPDATE SET "
            "status = $2, outcome_event_id = $3, outcome_type = $4, reasons = $5::jsonb, state = $6, decided_at = $7",
            event.causation_id, "rejected" if rejected else "accepted", event.id, event.type,
            json.dumps([r.model_dump() for r in data.reasons]) if rejected else None,
            data.state if rejected else None, event.time)
    match data:
        case ResultReady():
            await conn.execute(
                f"INSERT INTO {s}.requests (task_id, owner, state, outputs, approvals, created_at, updated_at) "
                "VALUES ($1, $2, 'checking', $3::jsonb, '[]', $4, $4) ON CONFLICT (task_id) DO NOTHING",
                data.task_id, data.owner, json.dumps([o.model_dump(mode="json") for o in data.outputs]), event.time)
        case OutputChecked():
            await conn.execute(
                f"UPDATE {s}.requests SET checks = $2::jsonb, state = CASE WHEN state = 'checking' THEN 'review' "
                f"ELSE state END, updated_at = $3 WHERE task_id = $1 AND {_OPEN}",
                data.task_id, json.dumps({"verdict": data.verdict,
                                          "files": [f.model_dump(mode="json") for f in data.files]}), event.time)
        case OutputApproved():
            approval = {"by": data.by, "note": data.note, "at": event.time.isoformat()}
            await conn.execute(
                f"UPDATE {s}.requests SET approvals = approvals || $2::jsonb, updated_at = $3 WHERE task_id = $1 "
                f"AND {_OPEN} AND NOT approvals @> $4::jsonb",
                data.task_id, json.dumps([approval]), event.time, json.dumps([{"by": data.by}]))
        case OutputRejected():
            await conn.execute(
                f"UPDATE {s}.requests SET state = 'rejected', rejection = $2::jsonb, updated_at = $3 "
                f"WHERE task_id = $1 AND {_OPEN}",
                data.task_id, json.dumps({"by": data.by, "reason": data.reason, "at": event.time.isoformat()}),
                event.time)
        case OutputReleased():
            await conn.execute(
                f"UPDATE {s}.requests SET state = 'released', released = $2::jsonb, updated_at = $3 "
                f"WHERE task_id = $1 AND {_OPEN}",
                data.task_id, json.dumps([o.model_dump(mode="json") for o in data.outputs]), event.time)
            for o in data.outputs:
                await conn.execute(
                    f"INSERT INTO {s}.released (object_id, task_id, owner, path, name, size, sha256, bucket, key, "
                    "encrypted_size, released_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                    "ON CONFLICT (object_id) DO NOTHING",
                    o.object_id, data.task_id, data.owner, o.path, o.name, o.size, o.sha256, o.bucket, o.key,
                    o.encrypted_size, event.time)


# -- queries -------------------------------------------------------------------------------------------------

SCHEMA = AirlockProjection().live_schema()


def _row(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for key in ("outputs", "checks", "approvals", "rejection", "released", "reasons"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


async def get_request(conn: Conn, task_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".requests WHERE task_id = $1', task_id)
    return _row(row) if row is not None else None


async def list_requests(conn: Conn, *, state: str | None = None, owner: str | None = None,
                        limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Requests, oldest first (the checkers' queue), filtered by state and owner; and how many match."""
    where, args = [], []
    if state is not None:
        args.append(state)
        where.append(f"state = ${len(args)}")
    if owner is not None:
        args.append(owner)
        where.append(f"owner = ${len(args)}")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".requests {clause}', *args)
    rows = await conn.fetch(f'SELECT * FROM "{SCHEMA}".requests {clause} ORDER BY created_at, task_id '
                            f"OFFSET ${len(args) + 1} LIMIT ${len(args) + 2}", *args, offset, limit)
    return [_row(r) for r in rows], int(total)


async def released_object(conn: Conn, object_id: str) -> dict[str, Any] | None:
    """A released output by DRS id, shaped as ``files.drs_object`` shapes an archived file (and its owner)."""
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".released WHERE object_id = $1', object_id)
    if row is None:
        return None
    r = dict(row)
    return {"drs_id": r["object_id"], "filename": r["name"], "size": r["size"], "sha256": r["sha256"], "md5": None,
            "format": None, "alias": None, "archive_bucket": r["bucket"], "archive_key": r["key"],
            "encrypted_size": r["encrypted_size"], "uploaded_at": r["released_at"], "updated_at": r["released_at"],
            "dataset_id": r["task_id"], "dataset_state": "released", "access_rights": "owner", "owner": r["owner"],
            "path": r["path"]}


async def get_command(conn: Conn, command_id: Any) -> dict[str, Any] | None:
    """An output command as requested and, once decided, its outcome (``status``: pending, accepted, rejected)."""
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".commands WHERE command_id = $1', command_id)
    return _row(row) if row is not None else None
