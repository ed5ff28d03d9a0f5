"""The ``workflows`` read model: each WES run as its command, its admission and its engine task say.

A run's state is WES's (the same states as TES): ``UNKNOWN`` once asked for, ``QUEUED`` when started
(admitted), ``SYSTEM_ERROR`` when rejected (the reasons in its system logs); then its engine task's
running states (``task.state_changed`` of ``task-<run id>``: INITIALIZING, RUNNING; ``CANCELING`` on
``task.cancel_accepted``); it ends only with ``workflow.completed`` / ``failed`` / ``canceled``, which
carry the step logs and cwltool's outputs, so an ended run always shows its steps. An ended state never changes again; a later state never gives way to an earlier one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.infra.readmodels.tasks import RANK_SQL, advance_sql
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.tasks import TaskCancelAccepted, TaskStateChanged
from genomebus.schemas.workflows import (
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowRequested,
    WorkflowStarted,
)

Conn = asyncpg.Connection | asyncpg.Pool


class WorkflowsProjection(Projection):
    """WES runs: the request, the state, the run's and each step's log, the outputs."""

    name = "workflows"
    version = 1
    contexts = ("processing", "processing.commands")
    tables = {
        "runs": (
            "run_id text PRIMARY KEY, task_id text NOT NULL, owner text NOT NULL, state text NOT NULL, "
            "request jsonb NOT NULL, tags jsonb NOT NULL, created_at timestamptz NOT NULL, start_time timestamptz, "
            "end_time timestamptz, exit_code int, system_logs jsonb NOT NULL, steps jsonb NOT NULL, "
            "outputs jsonb NOT NULL, engine_status text, updated_at timestamptz NOT NULL"
        ),
    }
    indexes = ("CREATE INDEX IF NOT EXISTS runs_by_owner ON {schema}.runs (owner, created_at DESC, run_id)",
               "CREATE UNIQUE INDEX IF NOT EXISTS runs_by_task ON {schema}.runs (task_id)")

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        for event, _ in events:
            await _fold(conn, f'"{schema}"', event)


async def _advance(conn: asyncpg.Connection, s: str, where: str, key: str, state: str, time: datetime,
                   extra: str = "", *args: Any) -> None:
    await conn.execute(advance_sql(f"{s}.runs", where, extra), key, state, time, *args)


def _insert(s: str) -> str:
    return (f"INSERT INTO {s}.runs (run_id, task_id, owner, state, request, tags, created_at, system_logs, steps, "
            "outputs, updated_at) VALUES ($1, $2, $3, 'UNKNOWN', $4::jsonb, $5::jsonb, $6, '[]', '[]', '{}', $6) "
            "ON CONFLICT (run_id) DO NOTHING")


async def _fold(conn: asyncpg.Connection, s: str, event: Envelope[Any]) -> None:
    data = event.data
    match data:
        case WorkflowRequested():
            await conn.execute(_insert(s), data.run_id, f"task-{data.run_id}", event.actor,
                               data.request.model_dump_json(), json.dumps(data.request.tags), event.time)
        case WorkflowStarted() | WorkflowRejected():  # the command may not be projected (a replay of facts alone)
            await conn.execute(_insert(s), data.run_id, f"task-{data.run_id}", data.owner,
                               data.request.model_dump_json(), json.dumps(data.request.tags), event.time)
            if isinstance(data, WorkflowStarted):
                await _advance(conn, s, "run_id", data.run_id, "QUEUED", event.time)
            else:
                lines = [f"rejected: {r.code}: {r.message}" for r in data.reasons]
                await _advance(conn, s, "run_id", data.run_id, "SYSTEM_ERROR", event.time,
                               ", system_logs = $4::jsonb", json.dumps(lines))
        case TaskStateChanged():
            if data.state in ("INITIALIZING", "RUNNING"):
                await _advance(conn, s, "task_id", data.task_id, data.state, event.time,
                               ", start_time = coalesce(start_time, $4)", data.start_time or event.time)
            else:  # the engine task's end: its times and exit code; the run ends with workflow.* (its steps)
                exit_code = data.logs[-1].exit_code if data.logs else None
                await conn.execute(
                    f"UPDATE {s}.runs SET end_time = $2, exit_code = $3, start_time = coalesce(start_time, $4), "
                    "updated_at = $5 WHERE task_id = $1", data.task_id, data.end_time or event.time, exit_code,
                    data.start_time, event.time)
        case TaskCancelAccepted():
            await _advance(conn, s, "task_id", data.task_id, "CANCELING", event.time)
        case WorkflowCompleted() | WorkflowFailed() | WorkflowCanceled():
            await conn.execute(  # the steps and outputs arrive once, after the engine task's end state
                f"UPDATE {s}.runs SET steps = $2::jsonb, outputs = $3::jsonb, engine_status = $4, "
                "system_logs = system_logs || $5::jsonb, state = CASE WHEN " + RANK_SQL.format(col="state") +
                " < 9 THEN $6 ELSE state END, end_time = coalesce(end_time, $7), updated_at = $7 WHERE run_id = $1",
                data.run_id, json.dumps([st.model_dump(mode="json") for st in data.steps]),
                json.dumps(data.outputs), data.engine_status, json.dumps(list(data.system_logs)), data.state,
                event.time)


# -- queries -------------------------------------------------------------------------------------------------

SCHEMA = WorkflowsProjection().live_schema()


def _row(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for key in ("request", "tags", "system_logs", "steps", "outputs"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


async def get_run(conn: Conn, run_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".runs WHERE run_id = $1', run_id)
    return _row(row) if row is not None else None


async def list_runs(conn: Conn, *, owner: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
    """Runs, newest first (stable: creation time, then id), of ``owner`` (None: everyone's)."""
    if owner is None:
        rows = await conn.fetch(f'SELECT * FROM "{SCHEMA}".runs ORDER BY created_at DESC, run_id '
                                "OFFSET $1 LIMIT $2", offset, limit)
    else:
        rows = await conn.fetch(f'SELECT * FROM "{SCHEMA}".runs WHERE owner = $1 ORDER BY created_at DESC, run_id '
                                "OFFSET $2 LIMIT $3", owner, offset, limit)
    return [_row(r) for r in rows]


async def state_counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch(f'SELECT state, count(*) AS n FROM "{SCHEMA}".runs GROUP BY state')
    return {r["state"]: int(r["n"]) for r in rows}
