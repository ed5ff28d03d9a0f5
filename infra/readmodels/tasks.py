"""The ``tasks`` read model: each TES task as its commands and facts say (state, logs, outputs).

A task's TES state: ``UNKNOWN`` once asked for (``task.requested``), then ``QUEUED`` (accepted) or
``SYSTEM_ERROR`` (rejected: the reasons in its system logs), the executor's states, ``CANCELING`` once a
cancel is accepted until the executor says ``CANCELED``. An ended state never changes again, and a
later state never gives way to an earlier one (events of one task are ordered, but a redelivered
``RUNNING`` after ``COMPLETE`` must not undo it). Owned here: the table, the version, the queries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.tasks import (
    ResultReady,
    TaskAccepted,
    TaskCancelAccepted,
    TaskRejected,
    TaskRequested,
    TaskStateChanged,
)

Conn = asyncpg.Connection | asyncpg.Pool
RANK = {"UNKNOWN": 0, "QUEUED": 1, "INITIALIZING": 2, "RUNNING": 3, "CANCELING": 4,
        "COMPLETE": 9, "EXECUTOR_ERROR": 9, "SYSTEM_ERROR": 9, "CANCELED": 9, "PREEMPTED": 9}
"""TES (and WES: the same states) in the order a run goes through them; 9: ended, never left."""
RANK_SQL = "CASE {col} " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in RANK.items()) + " ELSE 0 END"


def advance_sql(table: str, key: str, extra: str = "") -> str:
    """``UPDATE`` of ``table``'s ``state`` to $2 (and ``updated_at`` to $3) where ``key`` = $1, unless it has
    ended or $2 comes before it; ``extra`` sets more columns from $4 on."""
    return (f"UPDATE {table} SET state = $2, updated_at = $3{extra} WHERE {key} = $1 AND "
            f"({RANK_SQL.format(col='state')} < 9) AND ({RANK_SQL.format(col='$2::text')} >= "
            f"{RANK_SQL.format(col='state')})")


class TasksProjection(Projection):
    """TES tasks: the spec asked for, the state, the logs per attempt, the outputs."""

    name = "tasks"
    version = 1
    contexts = ("processing", "processing.commands")
    tables = {
        "tasks": (
            "task_id text PRIMARY KEY, owner text NOT NULL, name text, state text NOT NULL, spec jsonb NOT NULL, "
            "tags jsonb NOT NULL, creation_time timestamptz NOT NULL, system_logs jsonb NOT NULL, "
            "attempts jsonb NOT NULL, outputs jsonb NOT NULL, updated_at timestamptz NOT NULL"
        ),
    }
    indexes = ("CREATE INDEX IF NOT EXISTS tasks_by_owner ON {schema}.tasks (owner, creation_time DESC, task_id)",)

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        for event, _ in events:
            await _fold(conn, f'"{schema}"', event)


async def _advance(conn: asyncpg.Connection, s: str, task_id: str, state: str, time: datetime) -> None:
    await conn.execute(advance_sql(f"{s}.tasks", "task_id"), task_id, state, time)


async def _fold(conn: asyncpg.Connection, s: str, event: Envelope[Any]) -> None:
    data = event.data
    match data:
        case TaskRequested():
            await conn.execute(
                f"INSERT INTO {s}.tasks (task_id, owner, name, state, spec, tags, creation_time, system_logs, "
                "attempts, outputs, updated_at) VALUES ($1, $2, $3, 'UNKNOWN', $4::jsonb, $5::jsonb, $6, '[]', '{}', "
                "'[]', $6) ON CONFLICT (task_id) DO NOTHING",
                data.task_id, event.actor, data.spec.name, data.spec.model_dump_json(), json.dumps(data.spec.tags),
                event.time)
        case TaskAccepted() | TaskRejected():
            await conn.execute(  # the command may not be projected (a replay of the facts alone): insert from the fact
                f"INSERT INTO {s}.tasks (task_id, owner, name, state, spec, tags, creation_time, system_logs, "
                "attempts, outputs, updated_at) VALUES ($1, $2, $3, 'UNKNOWN', $4::jsonb, $5::jsonb, $6, '[]', '{}', "
                "'[]', $6) ON CONFLICT (task_id) DO NOTHING",
                data.task_id, data.owner, data.spec.name, data.spec.model_dump_json(), json.dumps(data.spec.tags),
                event.time)
            if isinstance(data, TaskAccepted):
                await _advance(conn, s, data.task_id, "QUEUED", event.time)
            else:
                lines = [f"rejected: {r.code}: {r.message}" for r in data.reasons]
                await conn.execute(f"UPDATE {s}.tasks SET system_logs = $2::jsonb WHERE task_id = $1",
                                   data.task_id, json.dumps(lines))
                await _advance(conn, s, data.task_id, "SYSTEM_ERROR", event.time)
        case TaskCancelAccepted():
            await _advance(conn, s, data.task_id, "CANCELING", event.time)
        case TaskStateChanged():
            attempt = {"start_time": _iso(data.start_time), "end_time": _iso(data.end_time),
                       "logs": [log.model_dump(mode="json") for log in data.logs],
                       "outputs": [o.model_dump(mode="json") for o in data.outputs],
                       "system_logs": list(data.system_logs)}
            await conn.execute(
                f"UPDATE {s}.tasks SET attempts = attempts || jsonb_build_object($2::text, "
                f"coalesce(attempts -> $2::text, '{{}}'::jsonb) || jsonb_strip_nulls($3::jsonb)) "
                f"WHERE task_id = $1 AND {RANK_SQL.format(col='state')} < 9",
                data.task_id, str(data.attempt), json.dumps(attempt))
            await _advance(conn, s, data.task_id, data.state, event.time)
        case ResultReady():
            await conn.execute(f"UPDATE {s}.tasks SET outputs = $2::jsonb WHERE task_id = $1",
                               data.task_id, json.dumps([o.model_dump(mode="json") for o in data.outputs]))
        case ProcessingCommandRejected() if data.command_type == "task.cancel_requested":
            pass  # a refused cancel changes nothing


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


SCHEMA = TasksProjection.live_schema()


async def get_task(conn: Conn, task_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f'SELECT *, spec::text AS spec_json, system_logs::text AS system_json, '
                              f'attempts::text AS attempts_json FROM "{SCHEMA}".tasks WHERE task_id = $1', task_id)
    return _task(row) if row else None


def _task(row: asyncpg.Record) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if not k.endswith("_json") and k not in ("spec", "system_logs",
                                                                                       "attempts", "tags", "outputs")}
    out["spec"] = json.loads(row["spec_json"])
    out["system_logs"] = json.loads(row["system_json"])
    attempts = json.loads(row["attempts_json"])
    out["attempts"] = [attempts[k] for k in sorted(attempts, key=int)]
    return out


async def list_tasks(conn: Conn, *, owner: str | None, name_prefix: str | None, state: str | None,
                     tags: dict[str, str | None], offset: int, limit: int) -> list[dict[str, Any]]:
    """A page of tasks (newest first), ``owner``'s only unless None (an operator)."""
    where, args = ["true"], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if owner is not None:
        where.append(f"owner = {arg(owner)}")
    if name_prefix:
        where.append(f"starts_with(coalesce(name, ''), {arg(name_prefix)})")
    if state:
        where.append(f"state = {arg(state)}")
    for key, value in tags.items():
        where.append(f"tags ? {arg(key)}" if not value else f"tags ->> {arg(key)} = {arg(value)}")
    rows = await conn.fetch(
        f'SELECT *, spec::text AS spec_json, system_logs::text AS system_json, attempts::text AS attempts_json '
        f'FROM "{SCHEMA}".tasks WHERE {" AND ".join(where)} ORDER BY creation_time DESC, task_id '
        f"OFFSET {arg(offset)} LIMIT {arg(limit)}", *args)
    return [_task(r) for r in rows]


async def task_state(conn: Conn, task_id: str) -> tuple[str, str] | None:
    """(state, owner) of a task, or None."""
    row = await conn.fetchrow(f'SELECT state, owner FROM "{SCHEMA}".tasks WHERE task_id = $1', task_id)
    return (row["state"], row["owner"]) if row else None
